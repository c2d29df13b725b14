import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiResponse, ApiTags } from '@nestjs/swagger';
import { Public } from '../auth/auth.decorators';
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
  @ApiResponse({
    status: 503,
    description: 'Not ready (code not_ready); the checks member says which dependency failed',
    content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/ProblemDetailsDto' } } },
  })
  ready(): Promise<ReadinessDto> {
    return this.health.readiness();
  }
}
