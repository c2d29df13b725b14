import { randomUUID } from 'node:crypto';
import {
  AuthenticationError,
  InvalidVmStateError,
  NoResourcesAvailableError,
  TransientHypervisorError,
  VmNotFoundError,
} from './errors';
import type { HypervisorClient, Inventory, RebootOptions, ResizeRequest, StopOptions, UnshelveRequest } from './hypervisor-client';
import { HypervisorState, type StoredVm } from './hypervisor-state';
import { seededRandom } from './seeded-random';
import {
  CreateVmRequest,
  DiskRef,
  HypervisorTarget,
  VirtualMachine,
  requestedGpuIds,
  validateCreateVmRequest,
} from './virtual-machine';

export interface ClientOptions {
  /** SQLite file holding the hypervisor's state; ':memory:' for a throwaway fake. */
  statePath?: string;
  /** Probability that a create (or another verb, see failureFor) fails (the original: 1 in 100). */
  failureRate?: number;
  /** Simulated latency of every verb that changes a VM, in milliseconds. */
  latencyMs?: number;
  /** Seed for the failure draws; unseeded runs use Math.random. VM ids are always random UUIDs, so processes sharing a state file never collide. */
  seed?: number | string | null;
  /** Injected clock, for tests. */
  now?: () => Date;
}

export const DEFAULT_FAILURE_RATE = 0.01;
const DEFAULT_CONSOLE_BYTES = 64 * 1024;

type Verb = 'create' | 'start' | 'stop' | 'reboot' | 'shelve' | 'unshelve' | 'resize';

/**
 * The error a verb fails with when the draw says so. Verbs that need new
 * capacity fail as create does; the others with a transient error, because a
 * stopped VM keeps its capacity and a start must not fail for the lack of it.
 */
function failureFor(verb: Verb): Error {
  if (verb === 'create' || verb === 'unshelve' || verb === 'resize') {
    return new NoResourcesAvailableError(
      verb === 'create' ? 'No resources available to create a new virtual machine' : `No resources available to ${verb} the virtual machine`,
    );
  }
  return new TransientHypervisorError(`The hypervisor could not ${verb} the virtual machine; try again`);
}

/**
 * A simulated hypervisor with the original SDK's interface and behaviour (see
 * sdk-contract.md), extended to the whole HypervisorClient: power states,
 * metadata, a synthetic console, stop/start/reboot/shelve/unshelve/resize,
 * device placement and durable state so the platform can be reconciled
 * against it. It has one host of its own; targets only filter by host name.
 */
export class Client implements HypervisorClient {
  authenticated = false;
  private readonly state: HypervisorState;
  private readonly failureRate: number;
  private readonly latencyMs: number;
  private readonly random: () => number;
  private readonly now: () => Date;

  constructor(
    private readonly apiKey: string | null = null,
    options: ClientOptions = {},
  ) {
    this.state = new HypervisorState(options.statePath ?? ':memory:');
    this.failureRate = options.failureRate ?? DEFAULT_FAILURE_RATE;
    this.latencyMs = options.latencyMs ?? 0;
    this.now = options.now ?? (() => new Date());
    this.random = options.seed != null ? seededRandom(options.seed) : Math.random;
  }

  authenticate(): boolean {
    if (!this.apiKey) throw new AuthenticationError('Invalid API key');
    this.authenticated = true;
    return true;
  }

  /** A request with a diskRef boots from that kept disk, as unshelveVm. */
  async createVm(request: CreateVmRequest): Promise<VirtualMachine> {
    if (request.diskRef) return this.unshelveVm({ ...request, diskRef: request.diskRef });
    this.requireAuthentication();
    validateCreateVmRequest(request);
    await this.simulateWork('create');
    const stored = this.toStored(randomUUID(), request);
    await this.state.add(stored);
    return stored.vm;
  }

  /** Returns true even for an unknown id, as the original did. A shelved disk goes too. */
  async deleteVm(vmId: string, _target?: HypervisorTarget): Promise<boolean> {
    this.requireAuthentication();
    await this.delay();
    await this.state.remove(vmId);
    return true;
  }

  async listVms(targets?: HypervisorTarget[]): Promise<VirtualMachine[]> {
    this.requireAuthentication();
    const all = this.state.list();
    if (!targets) return all;
    const hosts = new Set(targets.map((t) => t.host));
    return all.filter((vm) => hosts.has(vm.host));
  }

  /** The simulator always answers, so nothing is ever unreachable. */
  async inventory(targets: HypervisorTarget[]): Promise<Inventory> {
    return { vms: await this.listVms(targets), unreachable: [] };
  }

  async getVm(vmId: string, _target?: HypervisorTarget): Promise<VirtualMachine | null> {
    this.requireAuthentication();
    return this.state.get(vmId)?.vm ?? null;
  }

  /** A short synthetic boot log that names the VM and prints the test guest's marker line. */
  async consoleTail(vmId: string, _target?: HypervisorTarget, maxBytes = DEFAULT_CONSOLE_BYTES): Promise<string> {
    const { vm, sshKeyComments } = this.require(vmId);
    const lines = [
      '[    0.000000] Linux version 6.1.0 (vmplane simulator)',
      `[    0.412000] Booting virtual machine ${vm.name} (${vm.id})`,
      `vmplane-guest ready instance-id=${vm.metadata?.vmId ?? vm.id} keys=${sshKeyComments.join(',')}`,
    ];
    if (vm.power_state === 'shut_off') lines.push('[   12.000000] reboot: Power down');
    const log = Buffer.from(`${lines.join('\n')}\n`);
    return log.subarray(Math.max(0, log.length - maxBytes)).toString('utf8');
  }

  async startVm(vmId: string, _target?: HypervisorTarget): Promise<VirtualMachine> {
    return this.setPower(vmId, 'start', 'running');
  }

  async stopVm(vmId: string, _target?: HypervisorTarget, _options?: StopOptions): Promise<VirtualMachine> {
    return this.setPower(vmId, 'stop', 'shut_off');
  }

  async rebootVm(vmId: string, _target?: HypervisorTarget, _options?: RebootOptions): Promise<VirtualMachine> {
    const { vm } = this.require(vmId);
    if (vm.power_state !== 'running') throw new InvalidVmStateError(vmId, vm.power_state, 'reboot');
    await this.simulateWork('reboot');
    return this.require(vmId).vm;
  }

  async shelveVm(vmId: string, _target?: HypervisorTarget, _options?: StopOptions): Promise<DiskRef> {
    this.requireAuthentication();
    await this.simulateWork('shelve');
    return this.state.shelve(vmId, `sim-disk-${vmId}`, this.now().toISOString());
  }

  /** The VM gets its old id back, on request.host; a VM already unshelved is returned as it is. */
  async unshelveVm(request: UnshelveRequest): Promise<VirtualMachine> {
    this.requireAuthentication();
    validateCreateVmRequest(request);
    await this.simulateWork('unshelve');
    await this.state.unshelve(this.toStored(request.diskRef.hypervisorId, request));
    return this.require(request.diskRef.hypervisorId).vm;
  }

  async resizeVm(vmId: string, _target: HypervisorTarget | undefined, resize: ResizeRequest): Promise<VirtualMachine> {
    const { vm } = this.require(vmId);
    if (vm.power_state !== 'shut_off') throw new InvalidVmStateError(vmId, vm.power_state, 'resize');
    validateCreateVmRequest({ ...toRequest(vm), cpuCores: resize.cpuCores ?? vm.cpu_cores, memory: resize.memory ?? vm.memory, gpuDevices: resize.gpuDevices });
    await this.simulateWork('resize');
    await this.state.resize(vmId, {
      cpuCores: resize.cpuCores ?? vm.cpu_cores,
      memory: resize.memory ?? vm.memory,
      gpus: resize.gpuDevices ? resize.gpuDevices.map((g) => g.uuid) : vm.gpus,
    });
    return this.require(vmId).vm;
  }

  close(): void {
    this.state.close();
  }

  private async setPower(vmId: string, verb: 'start' | 'stop', to: 'running' | 'shut_off'): Promise<VirtualMachine> {
    const { vm } = this.require(vmId);
    if (vm.power_state === to) return vm;
    await this.simulateWork(verb);
    await this.state.setPowerState(vmId, to);
    return this.require(vmId).vm;
  }

  private toStored(id: string, request: CreateVmRequest): StoredVm {
    return {
      vm: {
        id,
        name: request.name,
        cpu_cores: request.cpuCores,
        memory: request.memory,
        disk_size: request.diskSize,
        public_ip: request.publicIp ?? null,
        labels: [...(request.labels ?? [])],
        host: request.host ?? null,
        gpus: requestedGpuIds(request),
        created_at: this.now().toISOString(),
        power_state: 'running',
        metadata: request.metadata ? { ...request.metadata } : null,
      },
      uri: request.uri ?? null,
      sshKeyComments: (request.sshKeys ?? []).map((key) => key.split(' ').slice(2).join(' ')),
    };
  }

  private require(vmId: string): StoredVm {
    this.requireAuthentication();
    const stored = this.state.get(vmId);
    if (!stored) throw new VmNotFoundError(vmId);
    return stored;
  }

  private requireAuthentication(): void {
    if (!this.authenticated) throw new AuthenticationError('Not authenticated');
  }

  /** The latency, then the failure draw: a failed verb changed nothing. */
  private async simulateWork(verb: Verb): Promise<void> {
    await this.delay();
    if (this.random() < this.failureRate) throw failureFor(verb);
  }

  private delay(): Promise<void> {
    if (this.latencyMs <= 0) return Promise.resolve();
    return new Promise((resolve) => setTimeout(resolve, this.latencyMs));
  }
}

function toRequest(vm: VirtualMachine): CreateVmRequest {
  return { name: vm.name, cpuCores: vm.cpu_cores, memory: vm.memory, diskSize: vm.disk_size };
}
