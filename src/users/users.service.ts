import { Injectable } from '@nestjs/common';
import { AuthUser } from '../auth/auth-user';
import { Clock, laterThan } from '../common/clock';
import { ConflictError, NotFoundError } from '../common/domain-errors';
import { IdGenerator } from '../common/id-generator';
import { AppConfig } from '../config/app-config';
import { constraintViolation } from '../database/sql-dialect';
import { CreateUserDto, SetQuotaDto, UserResponseDto } from './dto/user.dto';
import { PasswordHasher } from './password-hasher';
import { UserEntity, UserRole } from './user.entity';
import { toUserResponse } from './user.mapper';
import { UsersRepository } from './users.repository';

@Injectable()
export class UsersService {
  constructor(
    private readonly users: UsersRepository,
    private readonly hasher: PasswordHasher,
    private readonly ids: IdGenerator,
    private readonly clock: Clock,
    private readonly config: AppConfig,
  ) {}

  async create(dto: CreateUserDto): Promise<UserResponseDto> {
    const user = await this.buildUser(dto.username, dto.password, dto.role);
    try {
      await this.users.insert(user);
    } catch (error) {
      if (constraintViolation(error)?.kind === 'unique') {
        throw new ConflictError('username_taken', `The username ${dto.username} is taken`);
      }
      throw error;
    }
    return toUserResponse(user, this.config.quotaDefaults);
  }

  /** Creates the user unless the username exists; used to seed demo users. */
  async ensure(username: string, password: string, role: UserRole): Promise<void> {
    if (await this.users.findByUsername(username)) return;
    await this.users.insert(await this.buildUser(username, password, role));
  }

  async me(auth: AuthUser): Promise<UserResponseDto> {
    return toUserResponse(await this.require(auth.id), this.config.quotaDefaults);
  }

  async setQuota(userId: string, dto: SetQuotaDto): Promise<UserResponseDto> {
    const user = await this.require(userId);
    if (dto.vcpus !== undefined) user.quotaVcpus = dto.vcpus;
    if (dto.memory_mib !== undefined) user.quotaMemoryMib = dto.memory_mib;
    if (dto.gpus !== undefined) user.quotaGpus = dto.gpus;
    if (dto.vms !== undefined) user.quotaVms = dto.vms;
    user.updatedAt = laterThan(this.clock.now(), user.updatedAt);
    return toUserResponse(await this.users.save(user), this.config.quotaDefaults);
  }

  private async require(id: string): Promise<UserEntity> {
    const user = await this.users.findById(id);
    if (!user) throw new NotFoundError('user', id);
    return user;
  }

  private async buildUser(username: string, password: string, role: UserRole): Promise<UserEntity> {
    const now = this.clock.now();
    return Object.assign(new UserEntity(), {
      id: this.ids.next(),
      username,
      passwordHash: await this.hasher.hash(password),
      role,
      quotaVcpus: null,
      quotaMemoryMib: null,
      quotaGpus: null,
      quotaVms: null,
      usedVcpus: 0,
      usedMemoryMib: 0,
      usedGpus: 0,
      usedVms: 0,
      createdAt: now,
      updatedAt: now,
    });
  }
}
