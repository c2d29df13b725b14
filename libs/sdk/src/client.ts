import { randomUUID } from 'node:crypto';
import { AuthenticationError, NoResourcesAvailableError } from './errors';
import { HypervisorState } from './hypervisor-state';
import { seededRandom } from './seeded-random';
import { CreateVmRequest, VirtualMachine, validateCreateVmRequest } from './virtual-machine';

export interface ClientOptions {
  /** SQLite file holding the hypervisor's state; ':memory:' for a throwaway fake. */
  statePath?: string;
  /** Probability that createVm throws NoResourcesAvailableError (the original: 1 in 100). */
  failureRate?: number;
  /** Simulated latency of createVm and deleteVm, in milliseconds. */
  latencyMs?: number;
  /** Seed for the failure draws; unseeded runs use Math.random. VM ids are always random UUIDs, so processes sharing a state file never collide. */
  seed?: number | string | null;
  /** Injected clock, for tests. */
  now?: () => Date;
}

export const DEFAULT_FAILURE_RATE = 0.01;

/**
 * A simulated hypervisor client with the original SDK's interface and
 * behaviour (see sdk-contract.md), plus listVms/getVm, device placement and
 * durable state so the platform can be reconciled against it.
 */
export class Client {
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

  async createVm(request: CreateVmRequest): Promise<VirtualMachine> {
    this.requireAuthentication();
    validateCreateVmRequest(request);
    await this.delay();
    if (this.random() < this.failureRate) {
      throw new NoResourcesAvailableError('No resources available to create a new virtual machine');
    }
    const vm: VirtualMachine = {
      id: randomUUID(),
      name: request.name,
      cpu_cores: request.cpuCores,
      memory: request.memory,
      disk_size: request.diskSize,
      public_ip: request.publicIp ?? null,
      labels: [...(request.labels ?? [])],
      host: request.host ?? null,
      gpus: [...(request.gpus ?? [])],
      created_at: this.now().toISOString(),
    };
    await this.state.add(vm);
    return vm;
  }

  /** Returns true even for an unknown id, as the original did. */
  async deleteVm(vmId: string): Promise<boolean> {
    this.requireAuthentication();
    await this.delay();
    await this.state.remove(vmId);
    return true;
  }

  async listVms(): Promise<VirtualMachine[]> {
    this.requireAuthentication();
    return this.state.list();
  }

  async getVm(vmId: string): Promise<VirtualMachine | null> {
    this.requireAuthentication();
    return this.state.get(vmId);
  }

  close(): void {
    this.state.close();
  }

  private requireAuthentication(): void {
    if (!this.authenticated) throw new AuthenticationError('Not authenticated');
  }

  private delay(): Promise<void> {
    if (this.latencyMs <= 0) return Promise.resolve();
    return new Promise((resolve) => setTimeout(resolve, this.latencyMs));
  }
}
