import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { Public } from '../auth/auth.decorators';
import { ApiProblems } from '../common/api-problems.decorator';
import { HealthService } from './health.service';

export class HealthDto {
  @ApiProperty({ example: 'ok' })
  status: string;
}

export class ReadinessChecksDto {
  @ApiProperty({ example: 'ok', description: '"ok" or the error' })
  database: string;

  @ApiProperty({ example: 'ok', description: '"ok" or why the hypervisor is not authenticated' })
  hypervisor: string;
}

export class ReadinessDto {
  @ApiProperty({ example: 'ready' })
  status: string;

  @ApiProperty({ type: ReadinessChecksDto })
  checks: ReadinessChecksDto;
}

@ApiTags('health')
@Controller()
export class HealthController {
  constructor(private readonly health: HealthService) {}

  @Public()
  @Get('health')
  @ApiOperation({ operationId: 'getHealth', summary: 'Liveness: the process is up', security: [] })
  @ApiOkResponse({ type: HealthDto })
  live(): HealthDto {
    return { status: 'ok' };
  }

  @Public()
  @Get('ready')
  @ApiOperation({ operationId: 'getReadiness', summary: 'Readiness: the database answers and the hypervisor is authenticated', security: [] })
  @ApiOkResponse({ type: ReadinessDto })
  @ApiProblems('not_ready')
  ready(): Promise<ReadinessDto> {
    return this.health.readiness();
  }
}
