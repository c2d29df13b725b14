import { Injectable } from '@nestjs/common';
import { AuthUser } from '../auth/auth-user';
import { ConflictError, NotFoundError } from '../common/domain-errors';
import { IdGenerator } from '../common/id-generator';
import { AppConfig } from '../config/app-config';
import { constraintViolation } from '../database/constraint-violation';
import { UnitOfWork } from '../database/unit-of-work';
import { CreateUserDto, SetQuotaDto, UserResponseDto } from './dto/user.dto';
import { PasswordHasher } from './password-hasher';
import { UserRole } from '../common/user-role';
import { UserEntity } from './user.entity';
import { toUserResponse } from './user.mapper';
import { UsersRepository } from './users.repository';

@Injectable()
export class UsersService {
  constructor(
    private readonly uow: UnitOfWork,
    private readonly users: UsersRepository,
    private readonly hasher: PasswordHasher,
    private readonly ids: IdGenerator,
    private readonly config: AppConfig,
  ) {}

  async create(dto: CreateUserDto): Promise<UserResponseDto> {
    const user = await this.buildUser(dto.username, dto.password, dto.role);
    try {
      await this.uow.transaction((tx) => this.users.insert(tx, user));
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
    if (await this.uow.read((tx) => this.users.findByUsername(tx, username))) return;
    const user = await this.buildUser(username, password, role);
    await this.uow.transaction(async (tx) => {
      if (!(await this.users.findByUsername(tx, username))) await this.users.insert(tx, user);
    });
  }

  async me(auth: AuthUser): Promise<UserResponseDto> {
    return toUserResponse(await this.require(auth.id), this.config.quotaDefaults);
  }

  async setQuota(userId: string, dto: SetQuotaDto): Promise<UserResponseDto> {
    const user = await this.uow.transaction(async (tx) => {
      const found = await this.users.findById(tx, userId);
      if (!found) throw new NotFoundError('user', userId);
      const limits = { vcpus: dto.vcpus, memoryMib: dto.memory_mib, gpus: dto.gpus, vms: dto.vms };
      await this.users.setQuota(tx, userId, limits);
      return this.users.findById(tx, userId);
    });
    return toUserResponse(user!, this.config.quotaDefaults);
  }

  private async require(id: string): Promise<UserEntity> {
    const user = await this.uow.read((tx) => this.users.findById(tx, id));
    if (!user) throw new NotFoundError('user', id);
    return user;
  }

  private async buildUser(username: string, password: string, role: UserRole): Promise<UserEntity> {
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
    });
  }
}
