import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import type { Client, CreateVmRequest, VirtualMachine } from '@vmplane/sdk';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { HypervisorCallError, classifyHypervisorError } from './hypervisor-errors';
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
    @Inject(HYPERVISOR_CLIENT) private readonly client: Client,
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

  /** Creates a VM, retrying NoResourcesAvailableError with full-jitter backoff. */
  createVm(request: CreateVmRequest, random: () => number, onRetry?: RetryObserver): Promise<VirtualMachine> {
    return this.withRetries('create', () => this.client.createVm(request), (k) => k === 'no_resources', random, onRetry);
  }

  /** Deletes a VM, retrying anything except an authentication failure. */
  deleteVm(hypervisorId: string, random: () => number, onRetry?: RetryObserver): Promise<boolean> {
    return this.withRetries(
      'delete',
      () => this.client.deleteVm(hypervisorId),
      (k) => k !== 'authentication',
      random,
      onRetry,
    );
  }

  listVms(): Promise<VirtualMachine[]> {
    return this.once('list', () => this.client.listVms());
  }

  getVm(hypervisorId: string): Promise<VirtualMachine | null> {
    return this.once('get', () => this.client.getVm(hypervisorId));
  }

  private async withRetries<T>(
    kind: string,
    call: () => Promise<T>,
    retryable: (k: string) => boolean,
    random: () => number,
    onRetry?: RetryObserver,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(kind, call, attempt);
      } catch (error) {
        const failure = error as HypervisorCallError;
        if (attempt >= this.policy.maxAttempts || !retryable(failure.classified.kind)) throw failure;
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
