import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Put, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { AuthUser } from '../auth/auth-user';
import { CurrentUser, RequireRole } from '../auth/auth.decorators';
import { ApiProblems } from '../common/api-problems.decorator';
import { PageQueryDto } from '../common/page-query.dto';
import { UuidParam } from '../common/uuid-param.pipe';
import { ChangePasswordDto, UpdateUserDto, UserPageDto } from './dto/user-admin.dto';
import { CreateUserDto, SetQuotaDto, UserResponseDto } from './dto/user.dto';
import { UserRole } from '../common/user-role';
import { UsersService } from './users.service';

@ApiTags('users')
@ApiBearerAuth()
@Controller('users')
export class UsersController {
  constructor(private readonly users: UsersService) {}

  @Get()
  @RequireRole(UserRole.Admin)
  @ApiOperation({ operationId: 'listUsers', summary: 'Every user who is not deleted, newest first (admin)' })
  @ApiOkResponse({ type: UserPageDto })
  @ApiProblems(400, 401, 403)
  list(@Query() page: PageQueryDto): Promise<UserPageDto> {
    return this.users.list(page);
  }

  @Post()
  @RequireRole(UserRole.Admin)
  @ApiOperation({ operationId: 'createUser', summary: 'Create a user (admin); the role defaults to member' })
  @ApiCreatedResponse({ type: UserResponseDto })
  @ApiProblems(400, 401, 403, 'username_taken')
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

  @Post('me/password')
  @HttpCode(204)
  @ApiOperation({ operationId: 'changePassword', summary: 'Change your password; every token issued before stops working, this one included' })
  @ApiNoContentResponse({ description: 'Changed; sign in again with the new password' })
  @ApiProblems(400, 401)
  changePassword(@CurrentUser() user: AuthUser, @Body() dto: ChangePasswordDto): Promise<void> {
    return this.users.changePassword(user, dto);
  }

  @Patch(':id')
  @RequireRole(UserRole.Admin)
  @ApiOperation({ operationId: 'updateUser', summary: "Change a user's role or disable them (admin); takes effect on their existing tokens at once" })
  @ApiOkResponse({ type: UserResponseDto })
  @ApiProblems(400, 401, 403, 'not_found:user', 'last_admin')
  update(@Param('id', UuidParam) id: string, @Body() dto: UpdateUserDto): Promise<UserResponseDto> {
    return this.users.update(id, dto);
  }

  @Delete(':id')
  @RequireRole(UserRole.Admin)
  @HttpCode(204)
  @ApiOperation({ operationId: 'deleteUser', summary: 'Delete a user who holds no VMs (admin); their records stay, their tokens stop working' })
  @ApiNoContentResponse({ description: 'Deleted' })
  @ApiProblems(400, 401, 403, 'not_found:user', 'user_has_vms', 'last_admin')
  delete(@Param('id', UuidParam) id: string): Promise<void> {
    return this.users.delete(id);
  }

  @Put(':id/quota')
  @RequireRole(UserRole.Admin)
  @ApiOperation({ operationId: 'setUserQuota', summary: "Set a user's quota (admin)" })
  @ApiOkResponse({ type: UserResponseDto })
  @ApiProblems(400, 401, 403, 'not_found:user')
  setQuota(@Param('id', UuidParam) id: string, @Body() dto: SetQuotaDto): Promise<UserResponseDto> {
    return this.users.setQuota(id, dto);
  }
}
