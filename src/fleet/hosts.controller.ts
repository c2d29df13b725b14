import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiConsumes, ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequireRole } from '../auth/auth.decorators';
import { ApiProblems } from '../common/api-problems.decorator';
import { UuidParam } from '../common/uuid-param.pipe';
import { UserRole } from '../common/user-role';
import { HostListDto, HostResponseDto, ImportHostQueryDto, ListHostsQueryDto, RegisterHostDto, UpdateGpuDto, UpdateHostDto } from './dto/host.dto';
import { FleetService } from './fleet.service';

@ApiTags('fleet')
@ApiBearerAuth()
@RequireRole(UserRole.Admin)
@Controller('hosts')
export class HostsController {
  constructor(private readonly fleet: FleetService) {}

  @Post()
  @ApiOperation({ operationId: 'registerHost', summary: 'Register a hypervisor host and its GPUs (admin)' })
  @ApiCreatedResponse({ type: HostResponseDto })
  @ApiProblems(400, 401, 403, 'host_exists', 'gpu_exists')
  register(@Body() dto: RegisterHostDto): Promise<HostResponseDto> {
    return this.fleet.register(dto);
  }

  @Post('import')
  @ApiOperation({
    operationId: 'importHostFromNvidiaSmi',
    summary: 'Register a host from the XML that `nvidia-smi -q -x` prints on it (admin)',
  })
  @ApiConsumes('application/xml')
  @ApiBody({ schema: { type: 'string', description: 'nvidia-smi -q -x output' } })
  @ApiCreatedResponse({ type: HostResponseDto })
  @ApiProblems(400, 401, 403, 'host_exists', 'gpu_exists', 415)
  import(@Query() query: ImportHostQueryDto, @Body() xml: string): Promise<HostResponseDto> {
    return this.fleet.importNvidiaSmi(query, xml);
  }

  @Get()
  @ApiOperation({ operationId: 'listHosts', summary: 'Hosts, their GPUs and what is bound to them; removed hosts only with ?include_removed=true (admin)' })
  @ApiOkResponse({ type: HostListDto })
  @ApiProblems(400, 401, 403)
  list(@Query() query: ListHostsQueryDto): Promise<HostListDto> {
    return this.fleet.list(query);
  }

  @Get(':id')
  @ApiOperation({ operationId: 'getHost', summary: 'One host with its GPUs, removed or not (admin)' })
  @ApiOkResponse({ type: HostResponseDto })
  @ApiProblems(400, 401, 403, 'not_found:host')
  get(@Param('id', UuidParam) id: string): Promise<HostResponseDto> {
    return this.fleet.get(id);
  }

  @Patch(':id/gpus/:gpu_id')
  @ApiOperation({
    operationId: 'updateGpu',
    summary: "Change a GPU's sharing mode: passthrough, vgpu or mig, only while no VM holds it (admin)",
  })
  @ApiOkResponse({ type: HostResponseDto })
  @ApiProblems(400, 401, 403, 404, 409)
  updateGpu(@Param('id', UuidParam) id: string, @Param('gpu_id', UuidParam) gpuId: string, @Body() dto: UpdateGpuDto): Promise<HostResponseDto> {
    return this.fleet.updateGpu(id, gpuId, dto);
  }

  @Patch(':id')
  @ApiOperation({ operationId: 'updateHost', summary: 'Rename a host, replace its labels or change its state; draining stops new placements (admin)' })
  @ApiOkResponse({ type: HostResponseDto })
  @ApiProblems(400, 401, 403, 'not_found:host', 'host_exists', 'host_removed')
  update(@Param('id', UuidParam) id: string, @Body() dto: UpdateHostDto): Promise<HostResponseDto> {
    return this.fleet.update(id, dto);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({
    operationId: 'removeHost',
    summary: 'Take a host out of the fleet; its record stays with state removed. Refused while VMs live on it or shelved VMs are pinned to it (admin)',
  })
  @ApiNoContentResponse({ description: 'Removed, now or before' })
  @ApiProblems(400, 401, 403, 'not_found:host', 'host_has_vms')
  remove(@Param('id', UuidParam) id: string): Promise<void> {
    return this.fleet.remove(id);
  }
}
