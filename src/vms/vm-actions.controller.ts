import { Body, Controller, HttpCode, Param, Post, Req, Res } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBearerAuth, ApiBody, ApiHeader, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthUser } from '../auth/auth-user';
import { CurrentUser } from '../auth/auth.decorators';
import { ApiProblems } from '../common/api-problems.decorator';
import { UuidParam } from '../common/uuid-param.pipe';
import { RebootVmDto, ResizeVmDto, UnshelveVmDto } from './dto/vm-actions.dto';
import { VmResponseDto } from './dto/vm-response.dto';
import { requestOptions, sendOutcome } from './http-preferences';
import { VmActionsService } from './vm-actions.service';

const PREFER = { name: 'Prefer', required: false, description: 'RFC 7240: `respond-async` answers 202 at once; `wait=N` bounds how long to wait (default 30 s)' };
const KEY = { name: 'Idempotency-Key', required: false, description: 'Retries with the same key and body follow the first request’s operation' };

/** A VM's lifecycle actions; each runs as an operation of the VM (one at a time), listed under /vms/{id}/operations. */
@ApiTags('vms')
@ApiBearerAuth()
@Controller('vms')
export class VmActionsController {
  constructor(private readonly actions: VmActionsService) {}

  @Post(':id/stop')
  @HttpCode(200)
  @ApiOperation({ operationId: 'stopVm', summary: 'Shut a running VM down (gracefully, then forced after STOP_TIMEOUT_SECONDS); it keeps its host, GPUs and quota' })
  @ApiHeader(PREFER)
  @ApiHeader(KEY)
  @ApiOkResponse({ type: VmResponseDto, description: 'Stopped: power_state shut_off' })
  @ApiAcceptedResponse({ type: VmResponseDto, description: 'Still stopping; Location points at the operation' })
  @ApiProblems(400, 401, 404, 409, 'operation_in_progress', 502, 'hypervisor_unavailable')
  async stop(@CurrentUser() user: AuthUser, @Param('id', UuidParam) id: string, @Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<VmResponseDto> {
    return sendOutcome(reply, await this.actions.stop(user, id, requestOptions(request)));
  }

  @Post(':id/start')
  @HttpCode(200)
  @ApiOperation({ operationId: 'startVm', summary: 'Power a shut-off VM on, on the same host (it never fails for capacity)' })
  @ApiHeader(PREFER)
  @ApiHeader(KEY)
  @ApiOkResponse({ type: VmResponseDto, description: 'Started: power_state running' })
  @ApiAcceptedResponse({ type: VmResponseDto, description: 'Still starting; Location points at the operation' })
  @ApiProblems(400, 401, 404, 409, 'operation_in_progress', 502, 'hypervisor_unavailable')
  async start(@CurrentUser() user: AuthUser, @Param('id', UuidParam) id: string, @Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<VmResponseDto> {
    return sendOutcome(reply, await this.actions.start(user, id, requestOptions(request)));
  }

  @Post(':id/reboot')
  @HttpCode(200)
  @ApiOperation({ operationId: 'rebootVm', summary: 'Reboot a running VM through its guest, or reset it with {"hard": true}' })
  @ApiHeader(PREFER)
  @ApiHeader(KEY)
  @ApiBody({ type: RebootVmDto, required: false })
  @ApiOkResponse({ type: VmResponseDto, description: 'Rebooted' })
  @ApiAcceptedResponse({ type: VmResponseDto, description: 'Still rebooting; Location points at the operation' })
  @ApiProblems(400, 401, 404, 409, 'operation_in_progress', 502, 'hypervisor_unavailable')
  async reboot(
    @CurrentUser() user: AuthUser,
    @Param('id', UuidParam) id: string,
    @Body() dto: RebootVmDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<VmResponseDto> {
    return sendOutcome(reply, await this.actions.reboot(user, id, dto, requestOptions(request)));
  }

  @Post(':id/shelve')
  @HttpCode(200)
  @ApiOperation({ operationId: 'shelveVm', summary: 'Stop the VM if needed and give its host capacity, GPUs and their quota back; its disk is kept' })
  @ApiHeader(PREFER)
  @ApiHeader(KEY)
  @ApiOkResponse({ type: VmResponseDto, description: 'Shelved' })
  @ApiAcceptedResponse({ type: VmResponseDto, description: 'Still shelving; Location points at the operation' })
  @ApiProblems(400, 401, 404, 409, 'operation_in_progress', 502, 'hypervisor_unavailable')
  async shelve(@CurrentUser() user: AuthUser, @Param('id', UuidParam) id: string, @Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<VmResponseDto> {
    return sendOutcome(reply, await this.actions.shelve(user, id, requestOptions(request)));
  }

  @Post(':id/unshelve')
  @HttpCode(200)
  @ApiOperation({
    operationId: 'unshelveVm',
    summary: 'Place a shelved VM again (same GPU model and region, any host that fits) and boot it from its disk; 503 with alternatives, or a wait in the capacity queue, when nothing fits',
  })
  @ApiHeader(PREFER)
  @ApiHeader(KEY)
  @ApiBody({ type: UnshelveVmDto, required: false })
  @ApiOkResponse({ type: VmResponseDto, description: 'Running again' })
  @ApiAcceptedResponse({ type: VmResponseDto, description: 'Still unshelving, or waiting for capacity (Queue-Position); Location points at the operation' })
  @ApiProblems(400, 401, 403, 'quota_exceeded', 404, 409, 'operation_in_progress', 422, 'unsatisfiable', 502, 503, 'hypervisor_unavailable')
  async unshelve(
    @CurrentUser() user: AuthUser,
    @Param('id', UuidParam) id: string,
    @Body() dto: UnshelveVmDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<VmResponseDto> {
    return sendOutcome(reply, await this.actions.unshelve(user, id, dto, requestOptions(request)));
  }

  @Post(':id/resize')
  @HttpCode(200)
  @ApiOperation({ operationId: 'resizeVm', summary: 'Change the size of a shut-off VM on its host, or of a shelved VM (placed with its new size when unshelved)' })
  @ApiHeader(PREFER)
  @ApiHeader(KEY)
  @ApiOkResponse({ type: VmResponseDto, description: 'Resized' })
  @ApiAcceptedResponse({ type: VmResponseDto, description: 'Still resizing; Location points at the operation' })
  @ApiProblems(400, 401, 403, 'quota_exceeded', 404, 409, 'operation_in_progress', 502, 503, 'hypervisor_unavailable')
  async resize(
    @CurrentUser() user: AuthUser,
    @Param('id', UuidParam) id: string,
    @Body() dto: ResizeVmDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<VmResponseDto> {
    return sendOutcome(reply, await this.actions.resize(user, id, dto, requestOptions(request)));
  }
}
