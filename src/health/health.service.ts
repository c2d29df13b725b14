import { Injectable } from '@nestjs/common';
import { DomainError } from '../common/domain-errors';
import { UnitOfWork } from '../database/unit-of-work';
import { HypervisorGateway } from '../hypervisor/hypervisor.gateway';
import type { ReadinessDto } from './health.controller';

export class NotReadyError extends DomainError {
  readonly code = 'not_ready';
  constructor(checks: Record<string, string>) {
    super(`Not ready: ${Object.entries(checks).filter(([, v]) => v !== 'ok').map(([k, v]) => `${k}: ${v}`).join('; ')}`);
    this.extensions.checks = checks;
    this.retryAfterSeconds = 5;
  }
}

@Injectable()
export class HealthService {
  constructor(
    private readonly uow: UnitOfWork,
    private readonly gateway: HypervisorGateway,
  ) {}

  async readiness(): Promise<ReadinessDto> {
    const checks = { database: 'ok', hypervisor: 'ok' };
    try {
      await this.uow.ping();
    } catch (error) {
      checks.database = error instanceof Error ? error.message : String(error);
    }
    const auth = this.gateway.authStatus;
    if (!auth.authenticated) checks.hypervisor = `not authenticated: ${auth.error ?? 'unknown'}`;
    if (checks.database !== 'ok' || checks.hypervisor !== 'ok') throw new NotReadyError(checks);
    return { status: 'ready', checks };
  }
}
