import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { AuthUser } from '../auth/auth-user';
import { CurrentUser } from '../auth/auth.decorators';
import { ApiProblems } from '../common/api-problems.decorator';
import { UuidParam } from '../common/uuid-param.pipe';
import { ListOperationsQueryDto, OperationPageDto, OperationResponseDto } from './dto/operation.dto';
import { OperationsService } from './operations.service';

@ApiTags('operations')
@ApiBearerAuth()
@Controller('operations')
export class OperationsController {
  constructor(private readonly operations: OperationsService) {}

  @Get()
  @ApiOperation({ operationId: 'listOperations', summary: 'Operations on your VMs (admins: all), newest first' })
  @ApiOkResponse({ type: OperationPageDto })
  @ApiProblems(400, 401, 404)
  list(@CurrentUser() user: AuthUser, @Query() query: ListOperationsQueryDto): Promise<OperationPageDto> {
    return this.operations.list(user, query);
  }

  @Get(':id')
  @ApiOperation({ operationId: 'getOperation', summary: 'One operation: status, stage, attempts, error and timestamps' })
  @ApiOkResponse({ type: OperationResponseDto })
  @ApiProblems(400, 401, 404)
  get(@CurrentUser() user: AuthUser, @Param('id', UuidParam) id: string): Promise<OperationResponseDto> {
    return this.operations.get(user, id);
  }
}
