import { Injectable } from '@nestjs/common';
import { AuthUser } from '../auth/auth-user';
import { ConflictError, NotFoundError, ValidationFailedError } from '../common/domain-errors';
import { decodeCursor, toPage } from '../common/cursor';
import { Clock } from '../common/clock';
import { PageQueryDto } from '../common/page-query.dto';
import { IdGenerator } from '../common/id-generator';
import { AppConfig } from '../config/app-config';
import { constraintViolation } from '../database/constraint-violation';
import { UnitOfWork, type Tx } from '../database/unit-of-work';
import { VmsRepository } from '../vms/vms.repository';
import { ChangePasswordDto, UpdateUserDto, UserPageDto } from './dto/user-admin.dto';
import { CreateUserDto, SetQuotaDto, UserResponseDto } from './dto/user.dto';
import { PasswordHasher } from './password-hasher';
import { Principals } from './principals';
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
    private readonly principals: Principals,
    private readonly vms: VmsRepository,
    private readonly clock: Clock,
  ) {}

  async create(dto: CreateUserDto): Promise<UserResponseDto> {
    const user = await this.buildUser(dto.username, dto.password, dto.role ?? UserRole.Member);
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
      await this.requireIn(tx, userId);
      const limits = { vcpus: dto.vcpus, memoryMib: dto.memory_mib, gpuMilli: gpuMilliLimit(dto), vms: dto.vms };
      await this.users.setQuota(tx, userId, limits);
      return this.users.findById(tx, userId);
    });
    return toUserResponse(user!, this.config.quotaDefaults);
  }

  async list(page: PageQueryDto): Promise<UserPageDto> {
    const limit = page.limit ?? 50;
    const rows = await this.uow.read((tx) => this.users.list(tx, decodeCursor(page.cursor), limit + 1));
    return toPage(rows, limit, (user) => toUserResponse(user, this.config.quotaDefaults));
  }

  /**
   * An admin changes a user's role, disables or enables them, or sets a new
   * password for them (a reset). Disabling and a new password revoke every
   * token the user holds.
   */
  async update(id: string, dto: UpdateUserDto): Promise<UserResponseDto> {
    // Hashed before the transaction: argon2id takes tens of milliseconds, and nothing waits on it.
    const passwordHash = dto.password === undefined ? undefined : await this.hasher.hash(dto.password);
    const user = await this.uow.transaction(async (tx) => {
      const found = await this.requireIn(tx, id);
      const changes: Partial<UserEntity> = {};
      if (dto.role !== undefined) changes.role = dto.role;
      const disabling = dto.disabled === true && !found.disabledAt;
      if (dto.disabled !== undefined) changes.disabledAt = dto.disabled ? (found.disabledAt ?? this.clock.now()) : null;
      if (passwordHash !== undefined) changes.passwordHash = passwordHash;
      if (found.role === UserRole.Admin && !found.disabledAt && (changes.role === UserRole.Member || disabling)) await this.assertNotLastAdmin(tx);
      await this.users.update(tx, id, changes, disabling || passwordHash !== undefined);
      await this.principals.announce(tx, id);
      return this.requireIn(tx, id);
    });
    this.principals.invalidate(id);
    return toUserResponse(user, this.config.quotaDefaults);
  }

  /**
   * Deletes a user in place: they can no longer sign in and their tokens stop
   * working, while their VM records and operations keep pointing at them.
   * Refused while they still hold VMs.
   */
  async delete(id: string): Promise<void> {
    await this.uow.transaction(async (tx) => {
      const found = await this.requireIn(tx, id);
      const live = await this.vms.countLiveOwnedBy(tx, id);
      if (live > 0) {
        throw new ConflictError('user_has_vms', `User ${found.username} still has ${live} VM(s); delete them first`, { live_vms: live });
      }
      if (found.role === UserRole.Admin && !found.disabledAt) await this.assertNotLastAdmin(tx);
      await this.users.update(tx, id, { deletedAt: this.clock.now() }, true);
      await this.principals.announce(tx, id);
    });
    this.principals.invalidate(id);
  }

  /** The caller changes their own password; every token issued before, theirs included, stops working. */
  async changePassword(auth: AuthUser, dto: ChangePasswordDto): Promise<void> {
    const user = await this.require(auth.id);
    if (!(await this.hasher.verify(user.passwordHash, dto.current_password))) {
      throw new ValidationFailedError([{ field: 'current_password', message: 'is not your current password' }]);
    }
    const passwordHash = await this.hasher.hash(dto.new_password);
    await this.uow.transaction(async (tx) => {
      await this.users.update(tx, auth.id, { passwordHash }, true);
      await this.principals.announce(tx, auth.id);
    });
    this.principals.invalidate(auth.id);
  }

  private async assertNotLastAdmin(tx: Tx): Promise<void> {
    if ((await this.users.countActiveAdmins(tx)) <= 1) {
      throw new ConflictError('last_admin', 'This is the last admin who can sign in; make another admin first');
    }
  }

  private async requireIn(tx: Tx, id: string): Promise<UserEntity> {
    const user = await this.users.findById(tx, id);
    if (!user || user.deletedAt) throw new NotFoundError('user', id);
    return user;
  }

  private require(id: string): Promise<UserEntity> {
    return this.uow.read((tx) => this.requireIn(tx, id));
  }

  private async buildUser(username: string, password: string, role: UserRole): Promise<UserEntity> {
    return Object.assign(new UserEntity(), {
      id: this.ids.next(),
      username,
      passwordHash: await this.hasher.hash(password),
      role,
      quotaVcpus: null,
      quotaMemoryMib: null,
      quotaGpuMilli: null,
      quotaVms: null,
      usedVcpus: 0,
      usedMemoryMib: 0,
      usedGpuMilli: 0,
      usedVms: 0,
      tokenVersion: 0,
      disabledAt: null,
      deletedAt: null,
    });
  }
}

/** The GPU limit in milli-GPUs: gpu_milli as given, or gpus whole GPUs (× 1000); both is a 400. */
function gpuMilliLimit(dto: SetQuotaDto): number | null | undefined {
  if (dto.gpus !== undefined && dto.gpu_milli !== undefined) {
    throw new ValidationFailedError([{ field: 'gpu_milli', message: 'cannot be given with gpus: set the GPU quota in whole GPUs (gpus) or in milli-GPUs (gpu_milli), not both' }]);
  }
  if (dto.gpu_milli !== undefined) return dto.gpu_milli;
  if (dto.gpus === undefined || dto.gpus === null) return dto.gpus;
  return dto.gpus * 1000;
}
