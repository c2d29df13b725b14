import { Body, Controller, Delete, Get, Header, Param, Patch, Post, Query, Req, Res } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiHeader,
  ApiOkResponse,
  ApiOperation,
  ApiProduces,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthUser } from '../auth/auth-user';
import { CurrentUser } from '../auth/auth.decorators';
import { ApiProblems } from '../common/api-problems.decorator';
import { UuidParam } from '../common/uuid-param.pipe';
import { PageQueryDto } from '../common/page-query.dto';
import { OperationPageDto } from '../operations/dto/operation.dto';
import { ConsoleQueryDto } from './dto/console.query';
import { CreateVmDto } from './dto/create-vm.dto';
import { ListVmsQueryDto } from './dto/list-vms.query';
import { UpdateVmDto } from './dto/update-vm.dto';
import { VmPageDto, VmResponseDto } from './dto/vm-response.dto';
import { requestOptions, sendOutcome } from './http-preferences';
import { VmConsoleService } from './vm-console.service';
import { VmsService } from './vms.service';

const PREFER_HEADER = {
  name: 'Prefer',
  required: false,
  description: 'RFC 7240: `respond-async` answers 202 at once; `wait=N` bounds how long to wait (default 30 s)',
};

@ApiTags('vms')
@ApiBearerAuth()
@Controller('vms')
export class VmsController {
  constructor(
    private readonly vms: VmsService,
    private readonly consoles: VmConsoleService,
  ) {}

  @Post()
  @ApiOperation({ operationId: 'createVm', summary: 'Create a VM (optionally with GPUs)' })
  @ApiHeader(PREFER_HEADER)
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'Retries with the same key and body return the original response' })
  @ApiCreatedResponse({ type: VmResponseDto, description: 'Created; Location points at the VM' })
  @ApiAcceptedResponse({ type: VmResponseDto, description: 'Still provisioning; Location points at the operation' })
  @ApiProblems(400, 401, 403, 'quota_exceeded', 'public_ip_in_use', 'request_in_progress', 413, 422, 'unsatisfiable', 502, 503, 'hypervisor_unavailable')
  async create(
    @CurrentUser() user: AuthUser,
    @Body() dto: CreateVmDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<VmResponseDto> {
    return sendOutcome(reply, await this.vms.create(user, dto, requestOptions(request)));
  }

  @Get()
  @ApiOperation({ operationId: 'listVms', summary: 'Your VMs (admins: all), newest first; deleted VMs only with ?status=deleted' })
  @ApiOkResponse({ type: VmPageDto })
  @ApiProblems(400, 401)
  list(@CurrentUser() user: AuthUser, @Query() query: ListVmsQueryDto): Promise<VmPageDto> {
    return this.vms.list(user, query);
  }

  @Get(':id')
  @ApiOperation({ operationId: 'getVm', summary: 'One VM, deleted ones included' })
  @ApiOkResponse({ type: VmResponseDto })
  @ApiProblems(400, 401, 404)
  get(@CurrentUser() user: AuthUser, @Param('id', UuidParam) id: string): Promise<VmResponseDto> {
    return this.vms.get(user, id);
  }

  @Patch(':id')
  @ApiOperation({ operationId: 'updateVm', summary: 'Rename or relabel a VM (the labels sent replace its labels); logged as an update operation' })
  @ApiOkResponse({ type: VmResponseDto })
  @ApiProblems(400, 401, 404, 409)
  update(@CurrentUser() user: AuthUser, @Param('id', UuidParam) id: string, @Body() dto: UpdateVmDto, @Req() request: FastifyRequest): Promise<VmResponseDto> {
    return this.vms.update(user, id, dto, requestOptions(request));
  }

  @Delete(':id')
  @ApiOperation({ operationId: 'deleteVm', summary: 'Delete a VM; deleting a deleted VM returns it unchanged' })
  @ApiHeader(PREFER_HEADER)
  @ApiOkResponse({ type: VmResponseDto, description: 'Deleted' })
  @ApiAcceptedResponse({ type: VmResponseDto, description: 'Still deleting; Location points at the operation' })
  @ApiProblems(400, 401, 404, 409, 'operation_in_progress', 502, 'hypervisor_unavailable')
  async delete(
    @CurrentUser() user: AuthUser,
    @Param('id', UuidParam) id: string,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<VmResponseDto> {
    return sendOutcome(reply, await this.vms.delete(user, id, requestOptions(request)));
  }

  @Get(':id/operations')
  @ApiOperation({ operationId: 'listVmOperations', summary: "The VM's operation log, newest first" })
  @ApiOkResponse({ type: OperationPageDto })
  @ApiProblems(400, 401, 404)
  operations(@CurrentUser() user: AuthUser, @Param('id', UuidParam) id: string, @Query() page: PageQueryDto): Promise<OperationPageDto> {
    return this.vms.operations(user, id, page.limit, page.cursor);
  }

  @Get(':id/console')
  @Header('Content-Type', 'text/plain; charset=utf-8')
  @Header('Cache-Control', 'no-store')
  @ApiOperation({ operationId: 'getVmConsole', summary: "The tail of the VM's serial console, as text (owner or admin)" })
  @ApiProduces('text/plain')
  @ApiOkResponse({ description: 'The last `bytes` bytes of the serial console log', content: { 'text/plain': { schema: { type: 'string', example: 'vmplane-guest ready instance-id=019abcde-0000-7000-8000-000000000000 keys=alice@laptop' } } } })
  @ApiProblems(400, 401, 404, 409, 502, 503)
  console(@CurrentUser() user: AuthUser, @Param('id', UuidParam) id: string, @Query() query: ConsoleQueryDto): Promise<string> {
    return this.consoles.tail(user, id, query.bytes);
  }
}
