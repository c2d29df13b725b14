import { Body, Controller, Get, Param, Post, Put } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { AuthUser } from '../auth/auth-user';
import { CurrentUser, RequireRole } from '../auth/auth.decorators';
import { ApiProblems } from '../common/api-problems.decorator';
import { UuidParam } from '../common/uuid-param.pipe';
import { CreateUserDto, SetQuotaDto, UserResponseDto } from './dto/user.dto';
import { UserRole } from '../common/user-role';
import { UsersService } from './users.service';

@ApiTags('users')
@ApiBearerAuth()
@Controller('users')
export class UsersController {
  constructor(private readonly users: UsersService) {}

  @Post()
  @RequireRole(UserRole.Admin)
  @ApiOperation({ operationId: 'createUser', summary: 'Create a user (admin)' })
  @ApiCreatedResponse({ type: UserResponseDto })
  @ApiProblems(400, 401, 403, 409)
  create(@Body() dto: CreateUserDto): Promise<UserResponseDto> {
    return this.users.create(dto);
  }

  @Get('me')
  @ApiOperation({ operationId: 'getCurrentUser', summary: 'The caller, with quota and usage' })
  @ApiOkResponse({ type: UserResponseDto })
  @ApiProblems(401)
  me(@CurrentUser() user: AuthUser): Promise<UserResponseDto> {
    return this.users.me(user);
  }

  @Put(':id/quota')
  @RequireRole(UserRole.Admin)
  @ApiOperation({ operationId: 'setUserQuota', summary: "Set a user's quota (admin)" })
  @ApiOkResponse({ type: UserResponseDto })
  @ApiProblems(400, 401, 403, 404)
  setQuota(@Param('id', UuidParam) id: string, @Body() dto: SetQuotaDto): Promise<UserResponseDto> {
    return this.users.setQuota(id, dto);
  }
}
