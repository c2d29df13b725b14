import type { AuthUser } from '../../../src/auth/auth-user';
import { RandomSource } from '../../../src/common/random-source';
import { UuidV7Generator } from '../../../src/common/id-generator';
import { UserRole } from '../../../src/common/user-role';
import type { AppConfig } from '../../../src/config/app-config';
import { UnitOfWork, type Tx } from '../../../src/database/unit-of-work';
import { FleetRepository } from '../../../src/fleet/fleet.repository';
import { GpuEntity } from '../../../src/fleet/gpu.entity';
import { HostEntity, HostState } from '../../../src/fleet/host.entity';
import { PlacementService } from '../../../src/fleet/placement.service';
import { MetricsService } from '../../../src/metrics/metrics.service';
import { OperationAction, OperationEntity, OperationStatus } from '../../../src/operations/operation.entity';
import { UserEntity } from '../../../src/users/user.entity';
import type { UsersService } from '../../../src/users/users.service';
import type { VmResponseDto } from '../../../src/vms/dto/vm-response.dto';
import { PowerState, VmEntity, VmStatus } from '../../../src/vms/vm.entity';
import type { VmOutcome } from '../../../src/vms/vm-outcome';
import { VmsRepository } from '../../../src/vms/vms.repository';
import { run } from './database';

/** Time-ordered ids, as the server makes them. */
export const ids = new UuidV7Generator();

/** A fixed instant with a non-zero millisecond part, so precision loss shows. */
export const T0 = new Date('2031-03-04T05:06:07.089Z');
export const at = (offsetMs: number) => new Date(T0.getTime() + offsetMs);

export interface UserSeed {
  id?: string;
  username?: string;
  quotaVcpus?: number | null;
  quotaMemoryMib?: number | null;
  /** Milli-GPUs (1000 = one GPU). */
  quotaGpuMilli?: number | null;
  quotaVms?: number | null;
}

/** Inserts a users row with plain SQL (test setup only) and returns its id. */
export async function insertUser(tx: Tx, seed: UserSeed = {}): Promise<string> {
  const id = seed.id ?? ids.next();
  await run(
    tx,
    `INSERT INTO users (id, username, password_hash, role, quota_vcpus, quota_memory_mib, quota_gpu_milli, quota_vms,
       used_vcpus, used_memory_mib, used_gpu_milli, used_vms, created_at, updated_at)
     VALUES ($1, $2, 'x', $3, $4, $5, $6, $7, 0, 0, 0, 0, $8, $8)`,
    [
      id,
      seed.username ?? `user-${id.slice(-12)}`,
      UserRole.Member,
      seed.quotaVcpus ?? null,
      seed.quotaMemoryMib ?? null,
      seed.quotaGpuMilli ?? null,
      seed.quotaVms ?? null,
      T0,
    ],
  );
  return id;
}

/** A complete member UserEntity with no usage, for writes through TypeORM (timestamps left to the subscriber unless given). */
export function userEntity(overrides: Partial<UserEntity> = {}): UserEntity {
  const id = overrides.id ?? ids.next();
  return Object.assign(new UserEntity(), {
    id,
    username: `user-${id.slice(-12)}`,
    passwordHash: '$argon2id$v=19$m=65536,t=3,p=4$abc',
    role: UserRole.Member,
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
    ...overrides,
  });
}

export interface HostSeed {
  name?: string;
  region?: string;
  cpuCores?: number;
  memoryMib?: number;
  diskGib?: number;
  state?: HostState;
  labels?: string[];
  /** One model per GPU. */
  gpus?: string[];
}

/** Registers a host and its GPUs through FleetRepository.insertHost, as FleetService does. */
export async function registerHost(tx: Tx, fleet: FleetRepository, seed: HostSeed = {}): Promise<HostEntity> {
  const hostId = ids.next();
  const host = Object.assign(new HostEntity(), {
    id: hostId,
    name: seed.name ?? `host-${hostId.slice(-12)}`,
    region: seed.region ?? 'eu-west',
    cpuCores: seed.cpuCores ?? 64,
    memoryMib: seed.memoryMib ?? 512 * 1024,
    diskGib: seed.diskGib ?? 4000,
    usedCpuCores: 0,
    usedMemoryMib: 0,
    usedDiskGib: 0,
    state: seed.state ?? HostState.Active,
    labels: seed.labels ?? [],
  });
  const gpus = (seed.gpus ?? []).map((model, index) =>
    Object.assign(new GpuEntity(), {
      id: ids.next(),
      hostId,
      index,
      model,
      productName: `NVIDIA ${model}`,
      memoryMib: 81_559,
      pciAddress: `00000000:${(0x18 + index).toString(16).padStart(2, '0')}:00.0`,
      uuid: `GPU-${ids.next()}`,
      migMode: 'disabled',
      vmId: null,
    }),
  );
  await fleet.insertHost(tx, host, gpus);
  host.gpus = gpus;
  return host;
}

/** A complete VM entity with every field set to something distinguishable. */
export function vmEntity(ownerId: string, overrides: Partial<VmEntity> = {}): VmEntity {
  const id = overrides.id ?? ids.next();
  return Object.assign(new VmEntity(), {
    id,
    ownerId,
    name: `vm-${id.slice(-6)}`,
    cpuCores: 4,
    memory: 8192,
    diskSize: 100,
    publicIp: null,
    labels: [],
    status: VmStatus.Provisioning,
    statusReason: null,
    powerState: PowerState.Unknown,
    diskRef: null,
    image: null,
    userData: null,
    sshKeys: null,
    hostId: null,
    region: null,
    gpuCount: 0,
    gpuProfile: null,
    gpuModel: null,
    hypervisorId: null,
    releasedAt: null,
    deletedAt: null,
    ...overrides,
  });
}

/** Inserts a VM through VmsRepository.insert and returns it (timestamps stamped by the test clock unless given). */
export async function insertVm(tx: Tx, vms: VmsRepository, ownerId: string, overrides: Partial<VmEntity> = {}): Promise<VmEntity> {
  const vm = vmEntity(ownerId, overrides);
  await vms.insert(tx, vm);
  return vm;
}

export function operation(overrides: Partial<OperationEntity> = {}): OperationEntity {
  return Object.assign(new OperationEntity(), {
    id: ids.next(),
    vmId: null,
    action: OperationAction.Create,
    status: OperationStatus.Pending,
    stage: 'queued',
    attempts: 0,
    errorCode: null,
    errorMessage: null,
    userId: null,
    hypervisorVmId: null,
    requestId: null,
    leaseOwner: null,
    leaseExpiresAt: null,
    startedAt: null,
    finishedAt: null,
    params: null,
    deadlineAt: null,
    queueKey: null,
    ...overrides,
  });
}

/** Deterministic randomness for the scheduler. */
export class FixedRandom extends RandomSource {
  next(): number {
    return 0.5;
  }
}

/** PlacementService as the server builds it with PLACEMENT_POLICY unset (the default policy). */
export function placementService(uow: UnitOfWork, fleet: FleetRepository, policy: string | null = null, metrics = new MetricsService()): PlacementService {
  return new PlacementService(uow, fleet, new FixedRandom(), { placementPolicy: policy } as AppConfig, new UuidV7Generator(), metrics);
}

/** What a medium spec registers through FleetService: a host of `gpus` H100s, sized as given. */
export function h100Host(name: string, region: string, gpus: number, size: { cpu_cores: number; memory_mib: number; disk_gib: number }) {
  return {
    name,
    region,
    ...size,
    gpus: Array.from({ length: gpus }, (_, i) => ({
      index: i,
      product_name: 'NVIDIA H100 80GB HBM3',
      memory_mib: 81_559,
      pci_address: `00000000:${(0x18 + i).toString(16).padStart(2, '0')}:00.0`,
      uuid: `GPU-${name}-${i}`,
    })),
  };
}

/** A member made through UsersService, as the service sees its caller. */
export async function newMember(users: UsersService, username: string): Promise<AuthUser> {
  const created = await users.create({ username, password: 'medium-password', role: UserRole.Member });
  return { id: created.id, role: UserRole.Member };
}

/** The outcome of a VM request that finished (200/201); throws when it was queued or handed to the worker instead. */
export function finished(outcome: VmOutcome): Extract<VmOutcome, { kind: 'done' }> {
  if (outcome.kind !== 'done') throw new Error(`expected a finished outcome, got ${outcome.kind}`);
  return outcome;
}

/** The VM of a VM request that finished. */
export const finishedVm = (outcome: VmOutcome): VmResponseDto => finished(outcome).vm;
