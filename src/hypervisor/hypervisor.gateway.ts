import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import type {
  CreateVmRequest,
  DiskRef,
  HypervisorClient,
  HypervisorTarget,
  Inventory,
  RebootOptions,
  ResizeRequest,
  StopOptions,
  UnshelveRequest,
  VirtualMachine,
} from '@vmplane/sdk';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { HypervisorCallError, HypervisorVerb, classifyHypervisorError, isRetryable } from './hypervisor-errors';
import { HYPERVISOR_CLIENT } from './hypervisor.constants';
import { RetryPolicy, backoffDelayMs } from './retry-policy';

export interface RetryObserver {
  /** Called before sleeping between attempts, so the caller can record progress. */
  (failedAttempt: number, delayMs: number, error: HypervisorCallError): Promise<void> | void;
}

/**
 * Every call to the hypervisor goes through here: retries with backoff for
 * errors worth retrying, classification of everything else, metrics, and the
 * authentication state that /ready reports.
 */
@Injectable()
export class HypervisorGateway implements OnModuleInit {
  private readonly logger = new Logger(HypervisorGateway.name);
  private authError: string | null = 'not yet authenticated';
  private readonly policy: RetryPolicy;

  constructor(
    @Inject(HYPERVISOR_CLIENT) private readonly client: HypervisorClient,
    config: AppConfig,
    private readonly metrics: MetricsService,
  ) {
    this.policy = {
      maxAttempts: config.hypervisorMaxAttempts,
      baseDelayMs: config.hypervisorRetryBaseMs,
      maxDelayMs: config.hypervisorRetryMaxMs,
    };
  }

  onModuleInit(): void {
    this.authenticate();
  }

  /** Whether the client holds a valid session, and why not. */
  get authStatus(): { authenticated: boolean; error: string | null } {
    return { authenticated: this.authError === null && this.client.authenticated, error: this.authError };
  }

  authenticate(): boolean {
    try {
      this.client.authenticate();
      this.authError = null;
      return true;
    } catch (error) {
      this.authError = classifyHypervisorError(error).message;
      this.logger.error(`Hypervisor authentication failed: ${this.authError}`);
      return false;
    }
  }

  /** Creates a VM, retrying NoResourcesAvailableError (and a host that did not answer) with full-jitter backoff. */
  createVm(request: CreateVmRequest, random: () => number, onRetry?: RetryObserver): Promise<VirtualMachine> {
    return this.withRetries('create', () => this.client.createVm(request), random, onRetry);
  }

  /** Deletes a VM, retrying anything except an authentication failure or a request that can never work. */
  deleteVm(hypervisorId: string, random: () => number, onRetry?: RetryObserver, target?: HypervisorTarget): Promise<boolean> {
    return this.withRetries('delete', () => this.client.deleteVm(hypervisorId, target), random, onRetry);
  }

  /** Every VM with vmplane metadata on the targets (the driver's default host without); throws when one does not answer. */
  listVms(targets?: HypervisorTarget[]): Promise<VirtualMachine[]> {
    return this.once('list', () => this.client.listVms(targets));
  }

  /** Like listVms, but a host that does not answer is reported, with its error, instead of failing the whole list. */
  inventory(targets: HypervisorTarget[]): Promise<Inventory> {
    return this.once('inventory', () => this.client.inventory(targets));
  }

  getVm(hypervisorId: string, target?: HypervisorTarget): Promise<VirtualMachine | null> {
    return this.once('get', () => this.client.getVm(hypervisorId, target));
  }

  consoleTail(hypervisorId: string, target?: HypervisorTarget, maxBytes?: number): Promise<string> {
    return this.once('console', () => this.client.consoleTail(hypervisorId, target, maxBytes));
  }

  startVm(hypervisorId: string, target: HypervisorTarget | undefined, random: () => number, onRetry?: RetryObserver): Promise<VirtualMachine> {
    return this.withRetries('start', () => this.client.startVm(hypervisorId, target), random, onRetry);
  }

  /** Graceful, then forced after options.timeoutSeconds (the driver's STOP_TIMEOUT_SECONDS when absent). */
  stopVm(hypervisorId: string, target: HypervisorTarget | undefined, options: StopOptions, random: () => number, onRetry?: RetryObserver): Promise<VirtualMachine> {
    return this.withRetries('stop', () => this.client.stopVm(hypervisorId, target, options), random, onRetry);
  }

  rebootVm(hypervisorId: string, target: HypervisorTarget | undefined, options: RebootOptions, random: () => number, onRetry?: RetryObserver): Promise<VirtualMachine> {
    return this.withRetries('reboot', () => this.client.rebootVm(hypervisorId, target, options), random, onRetry);
  }

  /** Stops the VM if needed and removes it, keeping its disk: the DiskRef is what unshelveVm needs. */
  shelveVm(hypervisorId: string, target: HypervisorTarget | undefined, random: () => number, onRetry?: RetryObserver): Promise<DiskRef> {
    return this.withRetries('shelve', () => this.client.shelveVm(hypervisorId, target), random, onRetry);
  }

  unshelveVm(request: UnshelveRequest, random: () => number, onRetry?: RetryObserver): Promise<VirtualMachine> {
    return this.withRetries('unshelve', () => this.client.unshelveVm(request), random, onRetry);
  }

  resizeVm(hypervisorId: string, target: HypervisorTarget | undefined, resize: ResizeRequest, random: () => number, onRetry?: RetryObserver): Promise<VirtualMachine> {
    return this.withRetries('resize', () => this.client.resizeVm(hypervisorId, target, resize), random, onRetry);
  }

  private async withRetries<T>(verb: HypervisorVerb, call: () => Promise<T>, random: () => number, onRetry?: RetryObserver): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(verb, call, attempt);
      } catch (error) {
        const failure = error as HypervisorCallError;
        if (attempt >= this.policy.maxAttempts || !isRetryable(verb, failure.classified.kind)) throw failure;
        const delay = backoffDelayMs(attempt, this.policy, random);
        await onRetry?.(attempt, delay, failure);
        if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  private async once<T>(kind: string, call: () => Promise<T>, attempt = 1): Promise<T> {
    const stop = this.metrics.hypervisorLatency.startTimer({ call: kind });
    try {
      const result = await call();
      stop({ outcome: 'ok' });
      return result;
    } catch (error) {
      const classified = classifyHypervisorError(error);
      stop({ outcome: 'error' });
      this.metrics.hypervisorErrors.inc({ call: kind, kind: classified.kind });
      if (classified.kind === 'authentication') this.authError = classified.message;
      throw new HypervisorCallError(classified, attempt);
    }
  }
}
