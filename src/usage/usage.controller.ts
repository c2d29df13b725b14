import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { AuthUser } from '../auth/auth-user';
import { CurrentUser, RequireRole } from '../auth/auth.decorators';
import { ApiProblems } from '../common/api-problems.decorator';
import { UserRole } from '../common/user-role';
import { UuidParam } from '../common/uuid-param.pipe';
import { UsageQueryDto, UsageReportDto } from './dto/usage.dto';
import { UsageService } from './usage.service';

@ApiTags('usage')
@ApiBearerAuth()
@Controller()
export class UsageController {
  constructor(private readonly usage: UsageService) {}

  @Get('usage')
  @ApiOperation({ operationId: 'getUsage', summary: "The caller's VM-hours and GPU-hours over a window (default: the last 30 days)" })
  @ApiOkResponse({ type: UsageReportDto })
  @ApiProblems(400, 401)
  mine(@CurrentUser() user: AuthUser, @Query() query: UsageQueryDto): Promise<UsageReportDto> {
    return this.usage.report(user.id, query);
  }

  @Get('users/:id/usage')
  @RequireRole(UserRole.Admin)
  @ApiOperation({ operationId: 'getUserUsage', summary: "A user's VM-hours and GPU-hours over a window (admin)" })
  @ApiOkResponse({ type: UsageReportDto })
  @ApiProblems(400, 401, 403, 404)
  forUser(@Param('id', UuidParam) id: string, @Query() query: UsageQueryDto): Promise<UsageReportDto> {
    return this.usage.reportFor(id, query);
  }
}
