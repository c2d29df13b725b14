import { Body, Controller, Get, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiConsumes, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequireRole } from '../auth/auth.decorators';
import { ApiProblems } from '../common/api-problems.decorator';
import { UuidParam } from '../common/uuid-param.pipe';
import { UserRole } from '../common/user-role';
import { HostListDto, HostResponseDto, ImportHostQueryDto, RegisterHostDto, UpdateHostDto } from './dto/host.dto';
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
  @ApiProblems(400, 401, 403, 409)
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
  @ApiProblems(400, 401, 403, 409, 415)
  import(@Query() query: ImportHostQueryDto, @Body() xml: string): Promise<HostResponseDto> {
    return this.fleet.importNvidiaSmi(query, xml);
  }

  @Get()
  @ApiOperation({ operationId: 'listHosts', summary: 'Hosts, their GPUs and what is bound to them (admin)' })
  @ApiOkResponse({ type: HostListDto })
  @ApiProblems(401, 403)
  list(): Promise<HostListDto> {
    return this.fleet.list();
  }

  @Get(':id')
  @ApiOperation({ operationId: 'getHost', summary: 'One host with its GPUs (admin)' })
  @ApiOkResponse({ type: HostResponseDto })
  @ApiProblems(400, 401, 403, 404)
  get(@Param('id', UuidParam) id: string): Promise<HostResponseDto> {
    return this.fleet.get(id);
  }

  @Patch(':id')
  @ApiOperation({ operationId: 'updateHost', summary: "Change a host's state; draining stops new placements (admin)" })
  @ApiOkResponse({ type: HostResponseDto })
  @ApiProblems(400, 401, 403, 404)
  update(@Param('id', UuidParam) id: string, @Body() dto: UpdateHostDto): Promise<HostResponseDto> {
    return this.fleet.update(id, dto);
  }
}
