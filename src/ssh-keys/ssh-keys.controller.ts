import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { AuthUser } from '../auth/auth-user';
import { CurrentUser } from '../auth/auth.decorators';
import { ApiProblems } from '../common/api-problems.decorator';
import { UuidParam } from '../common/uuid-param.pipe';
import { AddSshKeyDto, SshKeyListDto, SshKeyResponseDto } from './dto/ssh-key.dto';
import { SshKeysService } from './ssh-keys.service';

@ApiTags('ssh-keys')
@ApiBearerAuth()
@Controller('ssh-keys')
export class SshKeysController {
  constructor(private readonly keys: SshKeysService) {}

  @Post()
  @ApiOperation({ operationId: 'addSshKey', summary: 'Add one of your OpenSSH public keys; POST /vms takes it by name in ssh_keys' })
  @ApiCreatedResponse({ type: SshKeyResponseDto })
  @ApiProblems(400, 401, 409)
  add(@CurrentUser() user: AuthUser, @Body() dto: AddSshKeyDto): Promise<SshKeyResponseDto> {
    return this.keys.add(user, dto);
  }

  @Get()
  @ApiOperation({ operationId: 'listSshKeys', summary: 'Your SSH keys, by name (admins too see only their own)' })
  @ApiOkResponse({ type: SshKeyListDto })
  @ApiProblems(401)
  list(@CurrentUser() user: AuthUser): Promise<SshKeyListDto> {
    return this.keys.list(user);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ operationId: 'deleteSshKey', summary: 'Delete one of your SSH keys; VMs made with it keep it' })
  @ApiNoContentResponse({ description: 'Deleted' })
  @ApiProblems(400, 401, 404)
  async delete(@CurrentUser() user: AuthUser, @Param('id', UuidParam) id: string): Promise<void> {
    await this.keys.delete(user, id);
  }
}
