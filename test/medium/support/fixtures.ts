import { RandomSource } from '../../../src/common/random-source';
import { UuidV7Generator } from '../../../src/common/id-generator';
import type { AppConfig } from '../../../src/config/app-config';
import type { Tx } from '../../../src/database/unit-of-work';
import { FleetRepository } from '../../../src/fleet/fleet.repository';
import { GpuEntity } from '../../../src/fleet/gpu.entity';
import { HostEntity, HostState } from '../../../src/fleet/host.entity';
import { PlacementService } from '../../../src/fleet/placement.service';
import { OperationAction, OperationStatus } from '../../../src/operations/operation.entity';
import type { OperationRecord } from '../../../src/operations/operation-record';
import { UserRole } from '../../../src/users/user.entity';
import { VmStatus } from '../../../src/vms/vm.entity';
import type { VmView } from '../../../src/vms/vm-view';
import { VmsRepository } from '../../../src/vms/vms.repository';

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
  quotaGpus?: number | null;
  quotaVms?: number | null;
}

/** Inserts a users row with plain SQL and returns its id. */
export async function insertUser(tx: Tx, seed: UserSeed = {}): Promise<string> {
  const id = seed.id ?? ids.next();
  const d = tx.dialect;
  await tx.run(
    `INSERT INTO users (id, username, password_hash, role, quota_vcpus, quota_memory_mib, quota_gpus, quota_vms,
       used_vcpus, used_memory_mib, used_gpus, used_vms, created_at, updated_at)
     VALUES ($1, $2, 'x', $3, $4, $5, $6, $7, 0, 0, 0, 0, $8, $8)`,
    [
      id,
      seed.username ?? `user-${id.slice(-12)}`,
      UserRole.Member,
      seed.quotaVcpus ?? null,
      seed.quotaMemoryMib ?? null,
      seed.quotaGpus ?? null,
      seed.quotaVms ?? null,
      d.ts(T0),
    ],
  );
  return id;
}

export interface HostSeed {
  name?: string;
  region?: string;
  cpuCores?: number;
  memoryMib?: number;
  diskGib?: number;
  state?: HostState;
  /** One model per GPU. */
  gpus?: string[];
}

/** Registers a host and its GPUs through FleetRepository.insertHost (TypeORM entities), as FleetService does. */
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
    createdAt: T0,
    updatedAt: T0,
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
      createdAt: T0,
      updatedAt: T0,
    }),
  );
  await fleet.insertHost(tx, host, gpus);
  host.gpus = gpus;
  return host;
}

/** A complete VmView with every field set to something distinguishable. */
export function vmView(ownerId: string, overrides: Partial<VmView> = {}): VmView {
  const id = overrides.id ?? ids.next();
  return {
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
    hostId: null,
    hostName: null,
    region: null,
    gpuCount: 0,
    gpuModel: null,
    hypervisorId: null,
    releasedAt: null,
    deletedAt: null,
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  };
}

/** Inserts a VM through VmsRepository.insert and returns it. */
export async function insertVm(tx: Tx, ownerId: string, overrides: Partial<VmView> = {}): Promise<VmView> {
  const vm = vmView(ownerId, overrides);
  await new VmsRepository().insert(tx, vm);
  return vm;
}

export function operation(overrides: Partial<OperationRecord> = {}): OperationRecord {
  return {
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
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  };
}

/** Deterministic randomness for the scheduler. */
export class FixedRandom extends RandomSource {
  next(): number {
    return 0.5;
  }
}

/** PlacementService as the server builds it with PLACEMENT_POLICY unset (the default policy). */
export function placementService(fleet: FleetRepository, policy: string | null = null): PlacementService {
  return new PlacementService(fleet, new FixedRandom(), { placementPolicy: policy } as AppConfig);
}
