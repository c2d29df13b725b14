import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AuthenticationError,
  HostUnreachableError,
  HypervisorCommandError,
  InvalidVmSpecError,
  InvalidVmStateError,
  VmNotFoundError,
} from '../errors';
import type { HypervisorClient, Inventory, RebootOptions, ResizeRequest, StopOptions, UnshelveRequest } from '../hypervisor-client';
import {
  type CreateVmRequest,
  type DiskRef,
  type GpuDevice,
  type HypervisorTarget,
  type ImageRef,
  type PowerState,
  type VirtualMachine,
  validateCreateVmRequest,
} from '../virtual-machine';
import { withSeedIso } from './cloud-init-seed';
import {
  DOMAIN_PREFIX,
  type DomainGpu,
  type DomainSpec,
  type HostCapabilities,
  type ParsedDomain,
  buildDomainXml,
  buildMdevXml,
  parseCapabilities,
  parseDomainXml,
} from './domain-xml';
import { Virsh, VirshError, type VirshOptions, type VirshTarget } from './virsh';

export interface LibvirtClientOptions {
  /** The URI of a target that names none (default `qemu:///system`). */
  defaultUri?: string;
  /** The libvirt network every VM's NIC joins (default `default`). */
  network?: string;
  /** The storage pool holding images, disks, seeds and console logs on every host; created when missing (default `vmplane`). */
  pool?: string;
  /** Where a missing pool is created (default `/var/lib/libvirt/images/<pool>`); keep it the same on every host, see docs/libvirt.md. */
  poolPath?: string;
  /** How long stopVm and shelveVm wait for the guest to shut down before forcing it off (default 60). */
  stopTimeoutSeconds?: number;
  /**
   * The domain type: `auto` (default) takes `kvm` when the host's capabilities offer it, else `qemu` (TCG).
   * `qemu` forces software emulation where /dev/kvm exists but does not work (a CPU without vmx/svm
   * under a hypervisor that still exposes the device: guests stop at once with "KVM internal error").
   */
  domainType?: 'auto' | 'kvm' | 'qemu';
  virsh?: VirshOptions;
  genisoimage?: string;
  now?: () => Date;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DOMAIN_NAME = /^vmplane-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;
const URI = /^[a-z][a-z0-9+.-]*:\/\/[^\s]*$/i;
const DEFAULT_CONSOLE_BYTES = 64 * 1024;
const MAX_CONSOLE_BYTES = 1024 * 1024;
const POLL_MS = 500;
/** Hosts listed at once by inventory, and domains read at once per host: each is a virsh process. */
const PARALLEL_HOSTS = 8;
const PARALLEL_DOMAINS = 4;

/** What a failed create or unshelve leaves to undo. */
interface Undo {
  volumes: string[];
  mdevs: DomainGpu[];
  defined: boolean;
}

const volumeNames = (id: string) => ({
  disk: `${DOMAIN_PREFIX}${id}-disk.qcow2`,
  seed: `${DOMAIN_PREFIX}${id}-seed.iso`,
  console: `${DOMAIN_PREFIX}${id}-console.log`,
});
const baseVolumeName = (image: ImageRef) => `${DOMAIN_PREFIX}image-${image.name}-${image.id}`;
const domainName = (id: string) => `${DOMAIN_PREFIX}${id}`;

async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  });
  await Promise.all(workers);
  return results;
}

function powerStateOf(domstate: string): PowerState {
  const state = domstate.trim();
  if (state === 'running' || state === 'idle' || state === 'in shutdown' || state === 'blocked') return 'running';
  if (state === 'shut off' || state === 'crashed') return 'shut_off';
  return 'unknown';
}

function toVm(spec: DomainSpec, power: PowerState): VirtualMachine {
  return {
    id: spec.id,
    name: spec.name,
    cpu_cores: spec.cpuCores,
    memory: spec.memoryMib,
    disk_size: spec.diskGib,
    public_ip: spec.publicIp,
    labels: [...spec.labels],
    host: spec.host,
    gpus: spec.gpus.map((g) => g.uuid),
    created_at: spec.createdAt,
    power_state: power,
    metadata: spec.metadata,
  };
}

/**
 * The hypervisor SDK on libvirt: real VMs on KVM hosts (or QEMU's software
 * emulation where KVM is unusable), reached through `virsh` with argument
 * arrays. Each VM is a domain `vmplane-<id>` whose libvirt UUID is its id (the
 * platform's VM id when metadata is given), carrying vmplane metadata; its disk
 * is a copy-on-write overlay on a base image uploaded once per host, its
 * cloud-init NoCloud seed an ISO volume, its serial console a log file in the
 * same pool (read back through libvirt's volume streams, so remote hosts work).
 */
export class LibvirtClient implements HypervisorClient {
  authenticated = false;
  private readonly virsh: Virsh;
  private readonly defaultUri: string;
  private readonly network: string;
  private readonly pool: string;
  private readonly poolPath: string;
  private readonly stopTimeoutSeconds: number;
  private readonly domainType: 'auto' | 'kvm' | 'qemu';
  private readonly genisoimage: string;
  private readonly now: () => Date;
  private readonly pools = new Map<string, Promise<void>>();
  private readonly capabilities = new Map<string, Promise<HostCapabilities>>();
  private readonly baseImages = new Map<string, Promise<void>>();

  constructor(options: LibvirtClientOptions = {}) {
    this.virsh = new Virsh(options.virsh);
    this.defaultUri = options.defaultUri ?? 'qemu:///system';
    this.network = options.network ?? 'default';
    this.pool = options.pool ?? 'vmplane';
    this.poolPath = options.poolPath ?? `/var/lib/libvirt/images/${this.pool}`;
    this.stopTimeoutSeconds = options.stopTimeoutSeconds ?? 60;
    this.domainType = options.domainType ?? 'auto';
    this.genisoimage = options.genisoimage ?? 'genisoimage';
    this.now = options.now ?? (() => new Date());
  }

  /** libvirt authenticates the transport (SSH keys, TLS certificates, the local socket's permissions); there is no API key. */
  authenticate(): boolean {
    this.authenticated = true;
    return true;
  }

  async createVm(request: CreateVmRequest): Promise<VirtualMachine> {
    if (request.diskRef) return this.unshelveVm({ ...request, diskRef: request.diskRef });
    this.requireAuthentication();
    validateCreateVmRequest(request);
    const id = request.metadata?.vmId ?? randomUUID();
    if (!UUID.test(id)) throw new InvalidVmSpecError('metadata.vmId must be a UUID: it becomes the domain UUID');
    const target = this.target(request);
    const adopted = await this.adopt(target, id, request);
    if (adopted) return adopted;
    await this.ensurePool(target);
    const names = volumeNames(id);
    const undo: Undo = { volumes: [], mdevs: [], defined: false };
    try {
      if (request.image) {
        await this.ensureBaseImage(target, request.image);
        await this.createVolume(target, names.disk, [`${request.diskSize}G`, '--format', 'qcow2', '--backing-vol', baseVolumeName(request.image), '--backing-vol-format', request.image.format], undo);
      } else {
        await this.createVolume(target, names.disk, [`${request.diskSize}G`, '--format', 'qcow2'], undo);
      }
      return await this.defineAndStart(target, id, request, names.disk, undo);
    } catch (error) {
      await this.undo(target, id, undo);
      throw error;
    }
  }

  async deleteVm(id: string, target?: HypervisorTarget): Promise<boolean> {
    this.requireAuthentication();
    if (!UUID.test(id)) return true;
    const where = this.target(target);
    const domain = await this.readDomain(where, id);
    if (domain && !domain.spec) throw new HypervisorCommandError(`Domain ${domain.name} carries no vmplane metadata; vmplane does not touch it`);
    if (domain) {
      await this.ignoring(this.virsh.run(where, ['destroy', domainName(id)]), (e) => e.notRunning || e.notFound);
      await this.ignoring(this.virsh.run(where, ['undefine', domainName(id), '--nvram']), (e) => e.notFound);
    }
    const pool = domain?.spec?.pool || this.pool;
    const names = volumeNames(id);
    for (const volume of [names.disk, names.seed]) await this.deleteVolume(where, volume, pool);
    await this.deleteConsoleLog(where, id, pool);
    for (const gpu of domain?.spec?.gpus ?? []) await this.removeMdev(where, gpu);
    return true;
  }

  async getVm(id: string, target?: HypervisorTarget): Promise<VirtualMachine | null> {
    this.requireAuthentication();
    if (!UUID.test(id)) return null;
    const where = this.target(target);
    const domain = await this.readDomain(where, id);
    if (!domain?.spec) return null;
    const power = await this.powerState(where, id);
    return power === null ? null : toVm(domain.spec, power);
  }

  async listVms(targets?: HypervisorTarget[]): Promise<VirtualMachine[]> {
    this.requireAuthentication();
    const lists = await mapLimited(targets ?? [{ host: null, uri: null }], PARALLEL_HOSTS, (t) => this.listHost(this.target(t)));
    return lists.flat();
  }

  async inventory(targets: HypervisorTarget[]): Promise<Inventory> {
    this.requireAuthentication();
    const unreachable: Inventory['unreachable'] = [];
    const lists = await mapLimited(targets, PARALLEL_HOSTS, (t) =>
      this.listHost(this.target(t)).catch((error: unknown) => {
        if (!(error instanceof HostUnreachableError)) throw error;
        unreachable.push({ target: t, error: error.message });
        return [];
      }),
    );
    return { vms: lists.flat(), unreachable };
  }

  /**
   * The console log is a file in the VM's pool, written by virtlogd; it is
   * read as a volume (vol-download), so this works on a remote URI as well.
   */
  async consoleTail(id: string, target?: HypervisorTarget, maxBytes = DEFAULT_CONSOLE_BYTES): Promise<string> {
    const where = this.target(target);
    const spec = await this.requireDomain(where, id);
    const volume = volumeNames(id).console;
    let bytes = await this.volumeBytes(where, spec.pool, volume);
    if (bytes === null) {
      // virtlogd made the file after the pool last looked: a refresh makes it a volume.
      await this.virsh.run(where, ['pool-refresh', spec.pool]);
      bytes = await this.volumeBytes(where, spec.pool, volume);
    }
    if (!bytes) return '';
    const length = Math.min(bytes, Math.max(1, Math.min(maxBytes, MAX_CONSOLE_BYTES)));
    const tail = await this.virsh.download(where, ['vol-download', '--pool', spec.pool, '--offset', String(bytes - length), '--length', String(length), volume]);
    return tail.toString('utf8');
  }

  async startVm(id: string, target?: HypervisorTarget): Promise<VirtualMachine> {
    const where = this.target(target);
    await this.requireDomain(where, id);
    await this.ignoring(this.virsh.run(where, ['start', domainName(id)]), (e) => e.alreadyRunning);
    return this.requireVm(where, id);
  }

  async stopVm(id: string, target?: HypervisorTarget, options: StopOptions = {}): Promise<VirtualMachine> {
    const where = this.target(target);
    await this.requireDomain(where, id);
    await this.powerOff(where, id, options);
    return this.requireVm(where, id);
  }

  async rebootVm(id: string, target?: HypervisorTarget, options: RebootOptions = {}): Promise<VirtualMachine> {
    const where = this.target(target);
    await this.requireDomain(where, id);
    const power = await this.powerState(where, id);
    if (power !== 'running') throw new InvalidVmStateError(id, power ?? 'unknown', 'reboot');
    await this.virsh.run(where, [options.hard ? 'reset' : 'reboot', domainName(id)]);
    return this.requireVm(where, id);
  }

  async shelveVm(id: string, target?: HypervisorTarget, options: StopOptions = {}): Promise<DiskRef> {
    this.requireAuthentication();
    const where = this.target(target);
    const domain = UUID.test(id) ? await this.readDomain(where, id) : null;
    if (domain && !domain.spec) throw new HypervisorCommandError(`Domain ${domain.name} carries no vmplane metadata; vmplane does not touch it`);
    const names = volumeNames(id);
    if (!domain?.spec) {
      // Shelved already: the disk is all that is left.
      const bytes = UUID.test(id) ? await this.volumeBytes(where, this.pool, names.disk) : null;
      if (bytes === null) throw new VmNotFoundError(id);
      return { hypervisorId: id, host: where.host, uri: where.uri, pool: this.pool, volume: names.disk, sizeGib: Math.ceil(bytes / 2 ** 30) };
    }
    const spec = domain.spec;
    await this.powerOff(where, id, options);
    await this.ignoring(this.virsh.run(where, ['undefine', domainName(id), '--nvram']), (e) => e.notFound);
    await this.deleteVolume(where, names.seed, spec.pool);
    await this.deleteConsoleLog(where, id, spec.pool);
    for (const gpu of spec.gpus) await this.removeMdev(where, gpu);
    return { hypervisorId: id, host: where.host, uri: where.uri, pool: spec.pool, volume: spec.diskVolume, sizeGib: spec.diskGib };
  }

  async unshelveVm(request: UnshelveRequest): Promise<VirtualMachine> {
    this.requireAuthentication();
    validateCreateVmRequest(request);
    const id = request.diskRef.hypervisorId;
    if (!UUID.test(id)) throw new VmNotFoundError(id);
    const target = this.target(request);
    const adopted = await this.adopt(target, id, request);
    if (adopted) return adopted;
    await this.ensurePool(target);
    const volume = await this.bringDisk(target, request);
    const undo: Undo = { volumes: [], mdevs: [], defined: false };
    try {
      return await this.defineAndStart(target, id, { ...request, diskSize: request.diskRef.sizeGib }, volume, undo);
    } catch (error) {
      await this.undo(target, id, undo);
      throw error;
    }
  }

  async resizeVm(id: string, target: HypervisorTarget | undefined, resize: ResizeRequest): Promise<VirtualMachine> {
    const where = this.target(target);
    const spec = await this.requireDomain(where, id);
    const power = await this.powerState(where, id);
    if (power !== 'shut_off') throw new InvalidVmStateError(id, power ?? 'unknown', 'resize');
    validateCreateVmRequest({ name: spec.name, cpuCores: resize.cpuCores ?? spec.cpuCores, memory: resize.memory ?? spec.memoryMib, diskSize: spec.diskGib, gpuDevices: resize.gpuDevices });
    const undo: Undo = { volumes: [], mdevs: [], defined: false };
    let gpus = spec.gpus;
    if (resize.gpuDevices) {
      const kept = new Map(spec.gpus.map((g) => [`${g.uuid}/${g.mdevType ?? ''}`, g]));
      gpus = [];
      try {
        for (const gpu of resize.gpuDevices) gpus.push(kept.get(`${gpu.uuid}/${gpu.mdevType ?? ''}`) ?? (await this.createMdevIfNeeded(where, gpu, undo)));
      } catch (error) {
        await this.undo(where, id, undo);
        throw error;
      }
    }
    const next: DomainSpec = {
      ...spec,
      cpuCores: resize.cpuCores ?? spec.cpuCores,
      memoryMib: resize.memory ?? spec.memoryMib,
      gpus,
      machine: gpus.length > 0 ? 'q35' : spec.machine,
      numa: this.numaFor(gpus, await this.hostCapabilities(where)),
    };
    try {
      await this.define(where, next);
    } catch (error) {
      await this.undo(where, id, undo);
      throw error;
    }
    const inUse = new Set(gpus.map((g) => g.mdevUuid).filter(Boolean));
    for (const old of spec.gpus) if (old.mdevUuid && !inUse.has(old.mdevUuid)) await this.removeMdev(where, old);
    return this.requireVm(where, id);
  }

  close(): void {
    // Every call is its own virsh process: there is no connection to close.
  }

  // ---- domains -------------------------------------------------------------------------------------------------

  /** A create (or unshelve) retried after the domain was made: the same VM, running, when its metadata says it is this request's. */
  private async adopt(target: VirshTarget, id: string, request: CreateVmRequest): Promise<VirtualMachine | null> {
    const existing = await this.readDomain(target, id);
    if (!existing) return null;
    const mine = existing.spec?.metadata;
    const asked = request.metadata;
    const same = existing.spec !== null && (!asked || (mine?.installationId === asked.installationId && mine?.vmId === asked.vmId));
    if (!same) throw new HypervisorCommandError(`Domain ${existing.name} already exists on ${target.host ?? target.uri} and is not this VM`);
    await this.ignoring(this.virsh.run(target, ['start', domainName(id)]), (e) => e.alreadyRunning);
    return this.requireVm(target, id);
  }

  /** Mediated devices, the seed, the domain; then power on. Everything made is recorded in `undo`. */
  private async defineAndStart(target: VirshTarget, id: string, request: CreateVmRequest, diskVolume: string, undo: Undo): Promise<VirtualMachine> {
    const names = volumeNames(id);
    const caps = await this.hostCapabilities(target);
    const gpus: DomainGpu[] = [];
    const devices: GpuDevice[] = request.gpuDevices ?? [];
    for (const gpu of devices) gpus.push(await this.createMdevIfNeeded(target, gpu, undo));
    let seedVolume: string | null = null;
    if (request.image || request.userData || request.sshKeys?.length) {
      await withSeedIso(
        { instanceId: request.metadata?.vmId ?? id, name: request.name, userData: request.userData ?? null, sshKeys: request.sshKeys ?? [] },
        async (path, bytes) => {
          await this.createVolume(target, names.seed, [String(bytes), '--format', 'raw'], undo);
          await this.virsh.transfer(target, ['vol-upload', '--pool', this.pool, names.seed, path]);
        },
        this.genisoimage,
      );
      seedVolume = names.seed;
    }
    const spec: DomainSpec = {
      id,
      name: request.name,
      domainType: this.domainType === 'auto' ? (caps.kvm ? 'kvm' : 'qemu') : this.domainType,
      machine: gpus.length > 0 ? 'q35' : 'pc',
      cpuCores: request.cpuCores,
      memoryMib: request.memory,
      diskGib: request.diskSize,
      publicIp: request.publicIp ?? null,
      labels: [...(request.labels ?? [])],
      host: request.host ?? null,
      createdAt: this.now().toISOString(),
      metadata: request.metadata ?? null,
      image: request.image?.name ?? null,
      pool: this.pool,
      diskVolume,
      seedVolume,
      consoleLog: join(await this.poolTargetPath(target), names.console),
      network: this.network,
      gpus,
      numa: this.numaFor(gpus, caps),
    };
    await this.define(target, spec);
    undo.defined = true;
    await this.virsh.run(target, ['start', domainName(id)]);
    return toVm(spec, 'running');
  }

  private async define(target: VirshTarget, spec: DomainSpec): Promise<void> {
    const xml = buildDomainXml(spec);
    const dir = await mkdtemp(join(tmpdir(), 'vmplane-domain-'));
    try {
      const file = join(dir, 'domain.xml');
      await writeFile(file, xml, { mode: 0o600 });
      await this.virsh.run(target, ['define', file]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Best effort: what a failed create made goes, so a failure leaves nothing behind on a host that answers. */
  private async undo(target: VirshTarget, id: string, undo: Undo): Promise<void> {
    const quietly = (work: Promise<unknown>) => work.catch(() => undefined);
    if (undo.defined) {
      await quietly(this.virsh.run(target, ['destroy', domainName(id)]));
      await quietly(this.virsh.run(target, ['undefine', domainName(id), '--nvram']));
      // A start that failed may have had virtlogd open the log already.
      await quietly(this.deleteConsoleLog(target, id, this.pool));
    }
    for (const volume of undo.volumes) await quietly(this.deleteVolume(target, volume, this.pool));
    for (const gpu of undo.mdevs) await quietly(this.removeMdev(target, gpu));
  }

  /** Null when the host has no such domain. */
  private async readDomain(target: VirshTarget, id: string): Promise<ParsedDomain | null> {
    try {
      return parseDomainXml(await this.virsh.run(target, ['dumpxml', '--inactive', domainName(id)]));
    } catch (error) {
      if (error instanceof VirshError && error.notFound) return null;
      throw error;
    }
  }

  private async requireDomain(target: VirshTarget, id: string): Promise<DomainSpec> {
    this.requireAuthentication();
    const domain = UUID.test(id) ? await this.readDomain(target, id) : null;
    if (!domain?.spec) throw new VmNotFoundError(id);
    return domain.spec;
  }

  private async requireVm(target: VirshTarget, id: string): Promise<VirtualMachine> {
    const vm = await this.getVm(id, target);
    if (!vm) throw new VmNotFoundError(id);
    return vm;
  }

  private async powerState(target: VirshTarget, id: string): Promise<PowerState | null> {
    try {
      return powerStateOf(await this.virsh.run(target, ['domstate', domainName(id)]));
    } catch (error) {
      if (error instanceof VirshError && error.notFound) return null;
      throw error;
    }
  }

  /** ACPI shutdown, then a forced stop once the timeout passes; a domain already off is left alone. */
  private async powerOff(target: VirshTarget, id: string, options: StopOptions): Promise<void> {
    if ((await this.powerState(target, id)) === 'shut_off') return;
    if (!options.force) {
      await this.ignoring(this.virsh.run(target, ['shutdown', domainName(id)]), (e) => e.notRunning);
      const deadline = Date.now() + (options.timeoutSeconds ?? this.stopTimeoutSeconds) * 1000;
      while (Date.now() < deadline) {
        if ((await this.powerState(target, id)) === 'shut_off') return;
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    }
    await this.ignoring(this.virsh.run(target, ['destroy', domainName(id)]), (e) => e.notRunning);
  }

  private async listHost(target: VirshTarget): Promise<VirtualMachine[]> {
    const names = (await this.virsh.run(target, ['list', '--all', '--name'])).split('\n').map((n) => n.trim());
    const listed = async (state: string) => new Set((await this.virsh.run(target, ['list', '--name', state])).split('\n').map((n) => n.trim()));
    const running = await listed('--state-running');
    const shutOff = await listed('--state-shutoff');
    const ids = names.map((n) => DOMAIN_NAME.exec(n)?.[1]).filter((id): id is string => Boolean(id));
    const vms = await mapLimited(ids, PARALLEL_DOMAINS, async (id) => {
      const domain = await this.readDomain(target, id);
      if (!domain?.spec) return null;
      // A domain in neither list (paused, suspended, or changed since) is asked directly.
      const name = domainName(id);
      const power = running.has(name) ? 'running' : shutOff.has(name) ? 'shut_off' : ((await this.powerState(target, id)) ?? 'unknown');
      return toVm(domain.spec, power);
    });
    return vms.filter((vm): vm is VirtualMachine => vm !== null);
  }

  private numaFor(gpus: GpuDevice[], caps: HostCapabilities): DomainSpec['numa'] {
    const nodes = new Set(gpus.map((g) => g.numaNode));
    if (gpus.length === 0 || nodes.size !== 1) return null;
    const node = [...nodes][0];
    if (node == null) return null;
    return { node, cpus: caps.cells.get(node) ?? null };
  }

  // ---- mediated devices (vGPU, MIG-backed vGPU) ----------------------------------------------------------------

  private async createMdevIfNeeded(target: VirshTarget, gpu: GpuDevice, undo: Undo): Promise<DomainGpu> {
    if (!gpu.mdevType) return { ...gpu, mdevUuid: null };
    const device: DomainGpu = { ...gpu, mdevUuid: randomUUID() };
    const dir = await mkdtemp(join(tmpdir(), 'vmplane-mdev-'));
    try {
      const file = join(dir, 'mdev.xml');
      await writeFile(file, buildMdevXml(device), { mode: 0o600 });
      await this.virsh.run(target, ['nodedev-create', file]);
      undo.mdevs.push(device);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    return device;
  }

  private async removeMdev(target: VirshTarget, gpu: DomainGpu): Promise<void> {
    if (!gpu.mdevUuid) return;
    const token = gpu.mdevUuid.replace(/-/g, '_');
    const names = (await this.virsh.run(target, ['nodedev-list', '--cap', 'mdev'])).split('\n').map((n) => n.trim());
    for (const name of names.filter((n) => n.includes(token))) {
      await this.ignoring(this.virsh.run(target, ['nodedev-destroy', name]), (e) => e.notFound);
    }
  }

  // ---- storage -------------------------------------------------------------------------------------------------

  /** The pool exists and runs on the host; made once per host (and again if the host lost it). */
  private ensurePool(target: VirshTarget): Promise<void> {
    const key = target.uri;
    let ready = this.pools.get(key);
    if (!ready) {
      ready = this.makePool(target).catch((error: unknown) => {
        this.pools.delete(key);
        throw error;
      });
      this.pools.set(key, ready);
    }
    return ready;
  }

  private async makePool(target: VirshTarget): Promise<void> {
    let info: string;
    try {
      info = await this.virsh.run(target, ['pool-info', this.pool]);
    } catch (error) {
      if (!(error instanceof VirshError && error.notFound)) throw error;
      await this.virsh.run(target, ['pool-define-as', this.pool, 'dir', '--target', this.poolPath]);
      await this.virsh.run(target, ['pool-build', this.pool]);
      await this.virsh.run(target, ['pool-autostart', this.pool]);
      info = await this.virsh.run(target, ['pool-info', this.pool]);
    }
    if (!/^State:\s+running/m.test(info)) await this.virsh.run(target, ['pool-start', this.pool]);
  }

  private async poolTargetPath(target: VirshTarget): Promise<string> {
    const xml = await this.virsh.run(target, ['pool-dumpxml', this.pool]);
    const path = /<target>\s*<path>([^<]+)<\/path>/.exec(xml)?.[1];
    if (!path) throw new HypervisorCommandError(`Pool ${this.pool} on ${target.host ?? target.uri} has no target path`);
    return path;
  }

  /** The base image, uploaded once into the host's pool through libvirt's streams (so remote hosts work). */
  private ensureBaseImage(target: VirshTarget, image: ImageRef): Promise<void> {
    const key = `${target.uri}\n${this.pool}\n${baseVolumeName(image)}`;
    let ready = this.baseImages.get(key);
    if (!ready) {
      ready = this.uploadBaseImage(target, image).catch((error: unknown) => {
        this.baseImages.delete(key);
        throw error;
      });
      this.baseImages.set(key, ready);
    }
    return ready;
  }

  private async uploadBaseImage(target: VirshTarget, image: ImageRef): Promise<void> {
    const volume = baseVolumeName(image);
    if ((await this.volumeBytes(target, this.pool, volume)) !== null) return;
    let bytes: number;
    try {
      bytes = (await stat(image.path)).size;
    } catch {
      throw new InvalidVmSpecError(`image ${image.name}: ${image.path} cannot be read on the control plane`);
    }
    await this.virsh.run(target, ['vol-create-as', this.pool, volume, String(bytes), '--format', image.format]);
    try {
      await this.virsh.transfer(target, ['vol-upload', '--pool', this.pool, volume, image.path]);
    } catch (error) {
      // A half-uploaded base must not be mistaken for a whole one later.
      await this.deleteVolume(target, volume, this.pool).catch(() => undefined);
      throw error;
    }
  }

  /** vol-create-as; a leftover of the same name from an earlier attempt that died (no domain uses it) is replaced. */
  private async createVolume(target: VirshTarget, name: string, args: string[], undo: Undo): Promise<void> {
    const create = () => this.virsh.run(target, ['vol-create-as', this.pool, name, ...args]);
    try {
      await create();
    } catch (error) {
      if (!(error instanceof VirshError && /already in use|exists already|already exists/i.test(error.stderr))) throw error;
      await this.deleteVolume(target, name, this.pool);
      await create();
    }
    undo.volumes.push(name);
  }

  private async deleteVolume(target: VirshTarget, name: string, pool: string): Promise<void> {
    await this.ignoring(this.virsh.run(target, ['vol-delete', '--pool', pool, name]), (e) => e.notFound);
  }

  /** The console log is a file virtlogd made behind the pool's back: the pool may need a refresh before it can be deleted as a volume. */
  private async deleteConsoleLog(target: VirshTarget, id: string, pool: string): Promise<void> {
    const name = volumeNames(id).console;
    try {
      await this.virsh.run(target, ['vol-delete', '--pool', pool, name]);
    } catch (error) {
      if (!(error instanceof VirshError && error.notFound)) throw error;
      await this.ignoring(this.virsh.run(target, ['pool-refresh', pool]), (e) => e.notFound);
      await this.deleteVolume(target, name, pool);
    }
  }

  /** The volume's size in bytes, or null when the pool has no such volume. */
  private async volumeBytes(target: VirshTarget, pool: string, name: string): Promise<number | null> {
    try {
      const info = await this.virsh.run(target, ['vol-info', '--bytes', '--pool', pool, name]);
      const capacity = /^Capacity:\s+(\d+)/m.exec(info)?.[1];
      return capacity ? Number(capacity) : 0;
    } catch (error) {
      if (error instanceof VirshError && error.notFound) return null;
      throw error;
    }
  }

  /**
   * The kept disk, in this driver's pool on the target: where it already is,
   * or streamed there from its old host (vol-download piped into vol-upload)
   * and then removed from the old one.
   */
  private async bringDisk(target: VirshTarget, request: UnshelveRequest): Promise<string> {
    const ref = request.diskRef;
    const source: VirshTarget = { host: ref.host, uri: ref.uri ?? this.defaultUri };
    const sourcePool = ref.pool ?? this.pool;
    if (source.uri === target.uri && sourcePool === this.pool) {
      if ((await this.volumeBytes(target, this.pool, ref.volume)) === null) throw new VmNotFoundError(ref.hypervisorId);
      return ref.volume;
    }
    let description: string;
    try {
      description = await this.virsh.run(source, ['vol-dumpxml', '--pool', sourcePool, ref.volume]);
    } catch (error) {
      if (!(error instanceof VirshError && error.notFound)) throw error;
      // Moved by an earlier attempt that died before it was recorded.
      if ((await this.volumeBytes(target, this.pool, ref.volume)) !== null) return ref.volume;
      throw new VmNotFoundError(ref.hypervisorId);
    }
    const capacity = /<capacity unit='bytes'>(\d+)<\/capacity>/.exec(description)?.[1];
    const backing = /<backingStore>\s*<path>([^<]+)<\/path>/.exec(description)?.[1];
    if (backing) {
      if (!request.image) throw new InvalidVmSpecError('image is required to move a disk that is an overlay on a base image');
      await this.ensureBaseImage(target, request.image);
      const targetBase = (await this.virsh.run(target, ['vol-path', '--pool', this.pool, baseVolumeName(request.image)])).trim();
      if (targetBase !== backing) {
        throw new HypervisorCommandError(`The kept disk's base image is ${backing} on ${source.host ?? source.uri} but ${targetBase} on ${target.host ?? target.uri}: give the pool the same path on every host`);
      }
    }
    const undo: Undo = { volumes: [], mdevs: [], defined: false };
    await this.createVolume(target, ref.volume, [capacity ?? `${ref.sizeGib}G`, '--format', 'qcow2'], undo);
    try {
      await this.virsh.pipeVolume(source, ['vol-download', '--pool', sourcePool, ref.volume], target, ['vol-upload', '--pool', this.pool, ref.volume]);
    } catch (error) {
      await this.undo(target, ref.hypervisorId, undo);
      throw error;
    }
    await this.deleteVolume(source, ref.volume, sourcePool);
    return ref.volume;
  }

  // ---- hosts ---------------------------------------------------------------------------------------------------

  /** KVM when the host's libvirt offers it for x86_64 guests, else QEMU's software emulation (TCG); asked once per host. */
  private hostCapabilities(target: VirshTarget): Promise<HostCapabilities> {
    let caps = this.capabilities.get(target.uri);
    if (!caps) {
      caps = this.virsh.run(target, ['capabilities']).then(parseCapabilities, (error: unknown) => {
        this.capabilities.delete(target.uri);
        throw error;
      });
      this.capabilities.set(target.uri, caps);
    }
    return caps;
  }

  private target(t?: { host?: string | null; uri?: string | null } | null): VirshTarget {
    const uri = t?.uri ?? this.defaultUri;
    if (!URI.test(uri)) throw new InvalidVmSpecError(`"${uri.slice(0, 100)}" is not a libvirt URI`);
    return { host: t?.host ?? null, uri };
  }

  private async ignoring(work: Promise<unknown>, benign: (error: VirshError) => boolean): Promise<void> {
    try {
      await work;
    } catch (error) {
      if (error instanceof VirshError && benign(error)) return;
      throw error;
    }
  }

  private requireAuthentication(): void {
    if (!this.authenticated) throw new AuthenticationError('Not authenticated');
  }
}
