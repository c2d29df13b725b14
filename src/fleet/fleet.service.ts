import { Injectable } from '@nestjs/common';
import { ConflictError, NotFoundError, ValidationFailedError } from '../common/domain-errors';
import { IdGenerator } from '../common/id-generator';
import { validateInput } from '../common/validation';
import { UnitOfWork } from '../database/unit-of-work';
import { constraintViolation } from '../database/constraint-violation';
import { canonicalGpuModel } from './domain/gpu-model';
import { NvidiaSmiParseError, parseNvidiaSmiXml, sharingModeOf } from './domain/nvidia-smi-parser';
import { VmsRepository } from '../vms/vms.repository';
import { GpuSharingModeDto, HostListDto, HostResponseDto, ImportHostQueryDto, ListHostsQueryDto, MigMode, RegisterHostDto, UpdateGpuDto, UpdateHostDto } from './dto/host.dto';
import { MIG_PROFILES_BY_MODEL, supportsMig } from './domain/gpu-profiles';
import { FleetRepository } from './fleet.repository';
import { GpuEntity } from './gpu.entity';
import { HostEntity, HostState } from './host.entity';
import { toHostResponse } from './host.mapper';

@Injectable()
export class FleetService {
  constructor(
    private readonly uow: UnitOfWork,
    private readonly fleet: FleetRepository,
    private readonly vms: VmsRepository,
    private readonly ids: IdGenerator,
  ) {}

  async register(dto: RegisterHostDto): Promise<HostResponseDto> {
    const hostId = this.ids.next();
    const gpus = (dto.gpus ?? []).map((g, position) =>
      Object.assign(new GpuEntity(), {
        id: this.ids.next(),
        hostId,
        index: g.index ?? position,
        model: g.model ?? canonicalGpuModel(g.product_name, g.memory_mib),
        productName: g.product_name,
        memoryMib: g.memory_mib,
        pciAddress: g.pci_address,
        uuid: g.uuid,
        migMode: g.mig_mode ?? MigMode.Disabled,
        sharingMode: g.sharing_mode ?? 'passthrough',
        vgpuProfile: null,
        liveClaims: 0,
        vmId: null,
      }),
    );
    assertDistinct(gpus.map((g) => g.index), 'gpus.index');
    gpus.forEach((g, i) => {
      if (g.sharingMode === 'mig' && !supportsMig(g.model)) {
        throw new ValidationFailedError([{ field: `gpus[${i}].sharing_mode`, message: `mig needs a GPU model with MIG profiles; ${g.model} has none` }]);
      }
    });
    assertDistinct(gpus.map((g) => g.uuid), 'gpus.uuid');
    const host = Object.assign(new HostEntity(), {
      id: hostId,
      name: dto.name,
      region: dto.region,
      cpuCores: dto.cpu_cores,
      memoryMib: dto.memory_mib,
      diskGib: dto.disk_gib,
      usedCpuCores: 0,
      usedMemoryMib: 0,
      usedDiskGib: 0,
      state: dto.state ?? HostState.Active,
      labels: dto.labels ?? [],
      hypervisorUri: dto.hypervisor_uri ?? null,
    });
    try {
      await this.uow.transaction(async (tx) => {
        if (await this.fleet.hostNameExists(tx, host.name)) {
          throw new ConflictError('host_exists', `A host named ${host.name} is already registered`);
        }
        const taken = await this.fleet.existingGpuUuids(tx, gpus.map((g) => g.uuid));
        if (taken.length > 0) {
          throw new ConflictError('gpu_exists', `GPU(s) already registered: ${taken.join(', ')}`, { gpu_uuids: taken });
        }
        await this.fleet.insertHost(tx, host, gpus);
      });
    } catch (error) {
      // Two registrations racing past the checks meet the unique constraints instead.
      if (constraintViolation(error)?.kind === 'unique') {
        throw new ConflictError('host_exists', `Host ${host.name} or one of its GPUs is already registered`);
      }
      throw error;
    }
    host.gpus = gpus;
    return toHostResponse(host);
  }

  /**
   * Registers a host from `nvidia-smi -q -x` output; the host's own size comes
   * from the query. What the XML says is validated exactly as a POST /hosts body.
   */
  async importNvidiaSmi(query: ImportHostQueryDto, xml: unknown): Promise<HostResponseDto> {
    if (typeof xml !== 'string' || xml.trim() === '') {
      throw new ValidationFailedError([{ field: 'body', message: 'must be the XML that nvidia-smi -q -x prints' }]);
    }
    let parsed;
    try {
      parsed = parseNvidiaSmiXml(xml);
    } catch (error) {
      if (error instanceof NvidiaSmiParseError) throw new ValidationFailedError([{ field: 'body', message: error.message }]);
      throw error;
    }
    const host = await validateInput(RegisterHostDto, {
      name: query.name,
      region: query.region ?? 'default',
      cpu_cores: query.cpu_cores,
      memory_mib: query.memory_mib,
      disk_gib: query.disk_gib,
      hypervisor_uri: query.hypervisor_uri,
      gpus: parsed.map((g) => ({
        index: g.index,
        product_name: g.productName,
        memory_mib: g.memoryMib,
        pci_address: g.pciAddress,
        uuid: g.uuid,
        model: g.model,
        mig_mode: g.migMode,
        sharing_mode: sharingModeOf(g) as GpuSharingModeDto,
      })),
    });
    return this.register(host);
  }

  async list(query: ListHostsQueryDto = {}): Promise<HostListDto> {
    const hosts = await this.uow.read((tx) => this.fleet.listHosts(tx, query.include_removed === true));
    return { items: hosts.map(toHostResponse) };
  }

  async get(id: string): Promise<HostResponseDto> {
    const host = await this.uow.read((tx) => this.fleet.findHost(tx, id));
    if (!host) throw new NotFoundError('host', id);
    return toHostResponse(host);
  }

  /**
   * Renames, relabels or changes the state of a host that is not removed.
   * Nothing in the process caches a host's name or labels (placement and
   * GET /capacity read the hosts table in each request, VMs join their
   * host's row when read), so the update takes effect for the next request
   * of every replica; nothing needs invalidating.
   */
  async update(id: string, dto: UpdateHostDto): Promise<HostResponseDto> {
    const changes = Object.fromEntries(
      Object.entries({ name: dto.name, labels: dto.labels, state: dto.state }).filter(([, value]) => value !== undefined),
    ) as Partial<Pick<HostEntity, 'name' | 'labels' | 'state'>>;
    try {
      const host = await this.uow.transaction(async (tx) => {
        const found = await this.fleet.findHost(tx, id);
        if (!found) throw new NotFoundError('host', id);
        if (found.state === HostState.Removed) throw hostRemoved(found);
        if (dto.name !== undefined && (await this.fleet.hostNameExists(tx, dto.name, { exceptId: id }))) throw nameTaken(dto.name);
        if (Object.keys(changes).length === 0) return found;
        // Conditional on the host not being removed: a removal committed since the read above wins.
        if (!(await this.fleet.updateHost(tx, id, changes))) throw hostRemoved(found);
        return (await this.fleet.findHost(tx, id))!;
      });
      return toHostResponse(host);
    } catch (error) {
      // A rename racing another rename or a registration past the check meets uq_hosts_live_name.
      if (dto.name !== undefined && constraintViolation(error)?.kind === 'unique') throw nameTaken(dto.name);
      throw error;
    }
  }

  /**
   * Takes a host out of the fleet: it keeps its row (its VMs' history and
   * GPU allocations point at it) with state removed, and is never placed on,
   * counted in /capacity or /metrics, or listed unless asked for. Refused
   * while VMs live on it or shelved VMs are pinned to it. Removing a removed
   * host again is a no-op.
   */
  async remove(id: string): Promise<void> {
    await this.uow.transaction(async (tx) => {
      const host = await this.fleet.findHost(tx, id);
      if (!host) throw new NotFoundError('host', id);
      if (host.state === HostState.Removed) return;
      // The row lock first, then the count: see FleetRepository.markRemoved.
      if (!(await this.fleet.markRemoved(tx, id))) return;
      const { live, shelved } = await this.vms.countOnHost(tx, id);
      if (live > 0 || shelved > 0) {
        throw new ConflictError(
          'host_has_vms',
          `Host ${host.name} still has ${live} live and ${shelved} shelved VM(s); delete or move them first`,
          { live_vms: live, shelved_vms: shelved },
        );
      }
    });
  }

  /**
   * Changes how a GPU is shared, only while nothing holds it (the repository's conditional update decides,
   * so a claim racing this request cannot slip in). mig needs a model with MIG profiles.
   */
  async updateGpu(hostId: string, gpuId: string, dto: UpdateGpuDto): Promise<HostResponseDto> {
    const host = await this.uow.transaction(async (tx) => {
      const owner = await this.fleet.findHost(tx, hostId);
      if (!owner) throw new NotFoundError('host', hostId);
      if (owner.state === HostState.Removed) throw hostRemoved(owner);
      const gpu = owner.gpus.find((candidate) => candidate.id === gpuId);
      if (!gpu) throw new NotFoundError('gpu', gpuId);
      if (dto.sharing_mode === 'mig' && !supportsMig(gpu.model)) {
        const models = Object.keys(MIG_PROFILES_BY_MODEL).join(', ');
        throw new ValidationFailedError([{ field: 'sharing_mode', message: `mig needs a GPU model with MIG profiles; ${gpu.model} has none (models with MIG: ${models})` }]);
      }
      if (gpu.sharingMode !== dto.sharing_mode && !(await this.fleet.setSharingMode(tx, hostId, gpuId, dto.sharing_mode))) {
        throw new ConflictError('gpu_busy', `GPU ${gpu.index} (${gpu.uuid}) is held by a VM; its sharing mode changes only while no VM holds it or any part of it`, {
          field: 'sharing_mode',
          gpu_id: gpuId,
        });
      }
      return this.fleet.findHost(tx, hostId);
    });
    return toHostResponse(host!);
  }

  /** Registers every host not yet known by name; used for the demo fleet. */
  async ensureHosts(hosts: RegisterHostDto[]): Promise<number> {
    let added = 0;
    for (const host of hosts) {
      // A removed host is not brought back by the next start.
      const exists = await this.uow.read((tx) => this.fleet.hostNameExists(tx, host.name, { includeRemoved: true }));
      if (exists) continue;
      await this.register(host);
      added++;
    }
    return added;
  }
}

function nameTaken(name: string): ConflictError {
  return new ConflictError('host_exists', `A host named ${name} is already registered`, { field: 'name' });
}

function hostRemoved(host: HostEntity): ConflictError {
  return new ConflictError('host_removed', `Host ${host.name} was removed; it can no longer be changed`, { host_id: host.id });
}

function assertDistinct(values: (string | number)[], field: string): void {
  const seen = new Set<string | number>();
  for (const value of values) {
    if (seen.has(value)) throw new ValidationFailedError([{ field, message: `has a duplicate value ${value}` }]);
    seen.add(value);
  }
}
