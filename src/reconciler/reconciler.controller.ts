import { Controller, Get, HttpCode, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequireRole } from '../auth/auth.decorators';
import { ApiProblems } from '../common/api-problems.decorator';
import { ConflictError } from '../common/domain-errors';
import { UserRole } from '../common/user-role';
import { ReconciliationReportDto } from './dto/reconciliation.dto';
import { ReconcilerService } from './reconciler.service';

@ApiTags('admin')
@ApiBearerAuth()
@RequireRole(UserRole.Admin)
@Controller('admin/reconciliation')
export class ReconcilerController {
  constructor(private readonly reconciler: ReconcilerService) {}

  @Get()
  @ApiOperation({ operationId: 'getLastReconciliation', summary: 'The last reconciliation pass: orphans, stuck work and drift (admin)' })
  @ApiOkResponse({ type: ReconciliationReportDto })
  @ApiProblems(401, 403, 404)
  last(): Promise<ReconciliationReportDto> {
    return this.reconciler.lastReport();
  }

  @Post()
  @HttpCode(200)
  @ApiOperation({ operationId: 'runReconciliation', summary: 'Run a reconciliation pass now and return its report (admin)' })
  @ApiOkResponse({ type: ReconciliationReportDto })
  @ApiProblems(401, 403, 409)
  async run(): Promise<ReconciliationReportDto> {
    const report = await this.reconciler.runNow();
    if (!report) throw new ConflictError('request_in_progress', 'Another replica is reconciling right now; read its report with GET');
    return report;
  }
}
