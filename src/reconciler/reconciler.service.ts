import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { HypervisorTarget, VirtualMachine } from '@vmplane/sdk';
import { Clock } from '../common/clock';
import { IdGenerator } from '../common/id-generator';
import { NotFoundError } from '../common/domain-errors';
import { AppConfig } from '../config/app-config';
import { UnitOfWork } from '../database/unit-of-work';
import { HypervisorCallError } from '../hypervisor/hypervisor-errors';
import { platformVmIdFromLabels } from '../hypervisor/hypervisor.constants';
import { HypervisorGateway } from '../hypervisor/hypervisor.gateway';
import { IdempotencyRepository } from '../idempotency/idempotency.repository';
import { InstallationService } from '../installation/installation.service';
import { MetricsService } from '../metrics/metrics.service';
import { OperationAction, OperationEntity, OperationStatus } from '../operations/operation.entity';
import { OperationWorker } from '../operations/operation-worker';
import { OperationsRepository } from '../operations/operations.repository';
import { RandomSource } from '../common/random-source';
import { VmEntity, VmStatus } from '../vms/vm.entity';
import { VmResources } from '../vms/vm-resources.service';
import { VmEvent } from '../vms/vm-state-machine';
import { VmsRepository } from '../vms/vms.repository';
import { targetOf } from '../vms/vm-target';
import { FleetRepository } from '../fleet/fleet.repository';
import type { HostEntity } from '../fleet/host.entity';
import { DriftDto, DriftKind, ReconciliationReportDto } from './dto/reconciliation.dto';
import { ReconciliationRunEntity } from './reconciliation-run.entity';
import { ReconciliationRunsRepository } from './reconciliation-runs.repository';

const RECONCILE_LOCK_KEY = 740_421_979;

/**
 * Compares the platform's records with the hypervisor's own list and repairs
 * the difference: orphans on the hypervisor are deleted (and the cleanup
 * recorded), live VMs missing from it are marked failed, and work whose
 * worker died is handed back to the workers. Every finding is re-checked
 * against the hypervisor before acting, so a race with a request in flight
 * cannot turn into a wrong repair.
 */
@Injectable()
export class ReconcilerService implements OnApplicationBootstrap, OnApplicationShutdown {
  /** Where each listed hypervisor VM was found, for the calls that follow in the same pass. */
  private targets = new Map<string, HypervisorTarget>();
  private readonly logger = new Logger(ReconcilerService.name);
  private timer: NodeJS.Timeout | null = null;
  private current: Promise<ReconciliationReportDto | null> | null = null;

  constructor(
    private readonly uow: UnitOfWork,
    private readonly vms: VmsRepository,
    private readonly ops: OperationsRepository,
    private readonly resources: VmResources,
    private readonly runs: ReconciliationRunsRepository,
    private readonly installation: InstallationService,
    private readonly idempotency: IdempotencyRepository,
    private readonly gateway: HypervisorGateway,
    private readonly worker: OperationWorker,
    private readonly metrics: MetricsService,
    private readonly ids: IdGenerator,
    private readonly clock: Clock,
    private readonly random: RandomSource,
    private readonly config: AppConfig,
    private readonly fleet: FleetRepository,
  ) {}

  onApplicationBootstrap(): void {
    setImmediate(() => void this.runNow());
    if (this.config.reconcileIntervalMs > 0) {
      this.timer = setInterval(() => void this.runNow(), this.config.reconcileIntervalMs);
      this.timer.unref();
    }
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.current?.catch(() => undefined);
  }

  /** Runs a pass unless one is running here; returns null if another replica holds the lock. */
  runNow(): Promise<ReconciliationReportDto | null> {
    this.current ??= this.uow
      .exclusively(RECONCILE_LOCK_KEY, () => this.reconcile())
      .catch((error) => {
        this.logger.error({ err: error }, 'reconciliation failed');
        return null;
      })
      .finally(() => {
        this.current = null;
      });
    return this.current;
  }

  async lastReport(): Promise<ReconciliationReportDto> {
    const run = await this.uow.read((tx) => this.runs.latest(tx));
    if (!run) throw new NotFoundError('reconciliation run', 'latest');
    return toReport(run, await this.installation.id());
  }

  private async reconcile(): Promise<ReconciliationReportDto> {
    const run = new ReconciliationRunEntity();
    Object.assign(run, {
      id: this.ids.next(),
      startedAt: this.clock.now(),
      finishedAt: null,
      hypervisorVms: 0,
      orphansFound: 0,
      orphansRemoved: 0,
      stuckOperationsResumed: 0,
      missingVmsFailed: 0,
      foreignVms: 0,
      error: null,
    });
    const drift: DriftDto[] = [];
    try {
      // The hypervisor first, then the records: anything created in between is still provisioning in the records.
      const { vms: listed, targets, unreachableHostIds } = await this.listHypervisors(drift);
      run.hypervisorVms = listed.length;
      // VMs on a host that did not answer are unknown, not gone: neither failed as missing nor touched.
      const live = (await this.uow.read((tx) => this.vms.listLive(tx))).filter((vm) => !vm.hostId || !unreachableHostIds.has(vm.hostId));
      const onHypervisor = await this.ownVms(listed, drift, run);
      this.targets = targets;
      run.stuckOperationsResumed = await this.resumeStuckWork(live, drift);
      // A VM with an operation in flight (a create, shelve or unshelve halfway) is left to that operation.
      const busy = await this.uow.read((tx) => this.ops.vmIdsWithOpenOperations(tx));
      await this.removeOrphans(onHypervisor, live, busy, drift, run);
      run.missingVmsFailed = await this.failMissing(onHypervisor, live, busy, drift);
      await this.uow.transaction((tx) => this.idempotency.purgeExpired(tx, this.clock.now()));
    } catch (error) {
      run.error = error instanceof Error ? error.message : String(error);
      this.logger.error({ err: error }, 'reconciliation pass failed');
    }
    const finishedAt = this.clock.now();
    run.finishedAt = finishedAt;
    run.details = JSON.stringify(drift);
    await this.uow.transaction((tx) => this.runs.insert(tx, run));
    for (const d of drift) this.metrics.reconcilerFindings.inc({ kind: d.kind });
    if (drift.some((d) => d.kind === DriftKind.HostUnreachable)) {
      this.logger.warn({ hosts: drift.filter((d) => d.kind === DriftKind.HostUnreachable).map((d) => d.action) }, 'hosts did not answer; their VMs were left as they are');
    }
    // Another installation's VMs are found on every pass and never touched: worth a debug line, not a warning.
    const repaired = drift.some((d) => d.kind !== DriftKind.HostUnreachable && d.kind !== DriftKind.ForeignVm) || run.stuckOperationsResumed > 0;
    if (repaired) {
      this.logger.warn(
        { orphans: run.orphansFound, removed: run.orphansRemoved, stuck: run.stuckOperationsResumed, missing: run.missingVmsFailed, foreign: run.foreignVms },
        'reconciliation repaired drift',
      );
    } else if (run.foreignVms > 0) {
      this.logger.debug({ foreign: run.foreignVms }, "another installation's VMs were found on the hypervisor and left alone");
    }
    return toReport(run, await this.installation.id());
  }

  /**
   * The hypervisor VMs this installation made: those whose metadata carries its
   * id, and (made before installations had ids) those without metadata whose
   * vmplane label names one of its VM records. Every other VM belongs to
   * another installation sharing the hosts: it is reported, never touched.
   */
  private async ownVms(listed: VirtualMachine[], drift: DriftDto[], run: ReconciliationRunEntity): Promise<VirtualMachine[]> {
    const installationId = await this.installation.id();
    const own: VirtualMachine[] = [];
    for (const hv of listed) {
      const labelled = platformVmIdFromLabels(hv.labels);
      const mine = hv.metadata
        ? hv.metadata.installationId === installationId
        : labelled !== null && (await this.uow.read((tx) => this.vms.exists(tx, labelled)));
      if (mine) {
        own.push(hv);
        continue;
      }
      run.foreignVms++;
      drift.push({
        kind: DriftKind.ForeignVm,
        vm_id: hv.metadata?.vmId ?? labelled,
        hypervisor_vm_id: hv.id,
        action: `left alone: ${hv.metadata ? `it belongs to installation ${hv.metadata.installationId}` : 'no installation claims it'}`,
        resolved: true,
      });
    }
    return own;
  }

  /** Unfinished operations nobody holds are handed to the workers; a VM in flight with no operation gets one. */
  private async resumeStuckWork(live: VmEntity[], drift: DriftDto[]): Promise<number> {
    const now = this.clock.now();
    let resumed = await this.uow.read((tx) => this.ops.countStale(tx, now));
    for (const vm of live) {
      if (vm.status !== VmStatus.Provisioning && vm.status !== VmStatus.Deleting) continue;
      const added = await this.uow.transaction(async (tx) => {
        if (await this.ops.findOpenForVm(tx, vm.id)) return false;
        // Recorded as a continuation (attempts 1), so the worker first looks for the VM on the hypervisor.
        await this.ops.insert(tx, this.operation(vm.status === VmStatus.Provisioning ? OperationAction.Create : OperationAction.Delete, vm.id, null, now, { attempts: 1 }));
        return true;
      });
      if (added) {
        resumed++;
        drift.push({ kind: DriftKind.StuckVm, vm_id: vm.id, hypervisor_vm_id: vm.hypervisorId, action: `queued a ${vm.status} continuation`, resolved: true });
      }
    }
    if (resumed > 0) this.worker.kick();
    return resumed;
  }

  private async removeOrphans(onHypervisor: VirtualMachine[], live: VmEntity[], busy: Set<string>, drift: DriftDto[], run: ReconciliationRunEntity): Promise<void> {
    const byHypervisorId = new Map(live.filter((vm) => vm.hypervisorId).map((vm) => [vm.hypervisorId!, vm]));
    const liveById = new Map(live.map((vm) => [vm.id, vm]));
    for (const hv of onHypervisor) {
      const owner = byHypervisorId.get(hv.id);
      if (owner && (owner.status === VmStatus.Created || owner.status === VmStatus.Deleting)) continue;
      const labelled = hv.metadata?.vmId ?? platformVmIdFromLabels(hv.labels);
      // A create in flight may not have recorded the hypervisor id yet (its operation adopts the VM); an unshelve or a shelve halfway owns it.
      if (owner && busy.has(owner.id)) continue;
      if (!owner && labelled && (busy.has(labelled) || liveById.get(labelled)?.status === VmStatus.Provisioning)) continue;

      const failedHolder = owner && owner.status === VmStatus.Failed ? owner : null;
      // A delete may have finished since the list was taken: only what is still there is an orphan.
      if (!(await this.gateway.getVm(hv.id, this.targets.get(hv.id)))) continue;
      run.orphansFound++;
      const removed = await this.removeFromHypervisor(hv.id, this.targets.get(hv.id));
      if (removed) run.orphansRemoved++;
      const now = this.clock.now();
      await this.uow.transaction(async (tx) => {
        if (failedHolder && removed) {
          await this.resources.release(tx, failedHolder, now);
          await this.resources.markGone(tx, failedHolder, now);
        }
        // The operation points at the platform VM when there is one (a label may name a VM that never existed).
        const vmId = failedHolder?.id ?? (labelled && (await this.vms.exists(tx, labelled)) ? labelled : null);
        await this.ops.insert(
          tx,
          this.operation(OperationAction.CleanupOrphan, vmId, hv.id, now, {
            status: removed ? OperationStatus.Succeeded : OperationStatus.Failed,
            message: failedHolder
              ? `VM ${failedHolder.id} failed but was still on the hypervisor; ${removed ? 'deleted it and released its resources' : 'delete failed'}`
              : `hypervisor VM ${hv.id} (${hv.name}) is not a live VM of the platform; ${removed ? 'deleted it' : 'delete failed'}`,
          }),
        );
      });
      drift.push({
        kind: failedHolder ? DriftKind.FailedVmOnHypervisor : DriftKind.Orphan,
        vm_id: failedHolder?.id ?? labelled,
        hypervisor_vm_id: hv.id,
        action: removed ? 'deleted from the hypervisor' : 'delete from the hypervisor failed; will retry',
        resolved: removed,
      });
    }
  }

  /** Live VMs the hypervisor does not have: marked failed (created) or released (failed, still holding). */
  private async failMissing(onHypervisor: VirtualMachine[], live: VmEntity[], busy: Set<string>, drift: DriftDto[]): Promise<number> {
    const present = new Set(onHypervisor.map((vm) => vm.id));
    let failed = 0;
    for (const vm of live) {
      if (busy.has(vm.id)) continue;
      const holdsWithoutVm = vm.status === VmStatus.Failed && vm.releasedAt === null;
      if (vm.status !== VmStatus.Created && !holdsWithoutVm) continue;
      if (vm.hypervisorId && present.has(vm.hypervisorId)) continue;
      if (vm.hypervisorId && (await this.gateway.getVm(vm.hypervisorId, targetOf(vm)))) continue;
      const now = this.clock.now();
      const reason = 'missing from the hypervisor (found by reconciliation)';
      const changed = await this.uow.transaction(async (tx) => {
        if (vm.status === VmStatus.Created) {
          const moved = await this.vms.transition(tx, vm.id, VmEvent.FoundMissing, { statusReason: reason });
          if (!moved.applied) return false;
        }
        await this.resources.release(tx, vm, now);
        await this.resources.markGone(tx, vm, now);
        await this.ops.insert(tx, this.operation(OperationAction.Reconcile, vm.id, vm.hypervisorId, now, { status: OperationStatus.Succeeded, message: reason }));
        return true;
      });
      if (!changed) continue;
      if (vm.status === VmStatus.Created) failed++;
      drift.push({ kind: DriftKind.MissingFromHypervisor, vm_id: vm.id, hypervisor_vm_id: vm.hypervisorId, action: vm.status === VmStatus.Created ? 'marked failed and released' : 'released', resolved: true });
    }
    return failed;
  }

  /**
   * Every hypervisor VM with vmplane metadata. On the simulator, or while no host names a libvirt
   * URI, one list of the driver's default. Otherwise one inventory per distinct URI
   * (hosts without one share the default): a URI that does not answer is reported, and its hosts'
   * VMs are left out of this pass instead of being taken for gone.
   */
  private async listHypervisors(drift: DriftDto[]): Promise<{ vms: VirtualMachine[]; targets: Map<string, HypervisorTarget>; unreachableHostIds: Set<string> }> {
    const hosts = await this.uow.read((tx) => this.fleet.hostTargets(tx));
    const targets = new Map<string, HypervisorTarget>();
    const unreachableHostIds = new Set<string>();
    // The simulator is one hypervisor whatever the hosts' URIs say.
    if (this.config.hypervisorDriver === 'simulator' || !hosts.some((h) => h.hypervisorUri)) {
      const vms = await this.gateway.listVms();
      await this.recordReachability(hosts, unreachableHostIds);
      return { vms, targets, unreachableHostIds };
    }
    const groups = new Map<string, { target: HypervisorTarget; hosts: typeof hosts }>();
    for (const host of hosts) {
      const key = host.hypervisorUri ?? '';
      const group = groups.get(key) ?? { target: { host: host.name, uri: host.hypervisorUri }, hosts: [] };
      group.hosts.push(host);
      groups.set(key, group);
    }
    const vms: VirtualMachine[] = [];
    for (const { target, hosts: sharing } of groups.values()) {
      const inventory = await this.gateway.inventory([target]);
      for (const vm of inventory.vms) {
        if (targets.has(vm.id)) continue;
        targets.set(vm.id, target);
        vms.push(vm);
      }
      for (const { error } of inventory.unreachable) {
        for (const host of sharing) unreachableHostIds.add(host.id);
        drift.push({
          kind: DriftKind.HostUnreachable,
          vm_id: null,
          hypervisor_vm_id: null,
          action: `${sharing.map((h) => h.name).join(', ')} not listed, its VMs left as they are: ${error}`,
          resolved: false,
        });
      }
    }
    await this.recordReachability(hosts, unreachableHostIds);
    return { vms, targets, unreachableHostIds };
  }

  /**
   * Marks the hosts that stopped answering (placement leaves them out) and clears those that answer again; writes
   * only what changed, and logs each change once.
   */
  private async recordReachability(hosts: Pick<HostEntity, 'id' | 'name' | 'unreachableSince'>[], unreachable: ReadonlySet<string>): Promise<void> {
    const gone = hosts.filter((h) => unreachable.has(h.id) && !h.unreachableSince);
    const back = hosts.filter((h) => !unreachable.has(h.id) && h.unreachableSince);
    if (gone.length === 0 && back.length === 0) return;
    const now = this.clock.now();
    await this.uow.transaction(async (tx) => {
      await this.fleet.markUnreachable(tx, gone.map((h) => h.id), now);
      await this.fleet.markReachable(tx, back.map((h) => h.id));
    });
    if (gone.length > 0) this.logger.warn({ hosts: gone.map((h) => h.name) }, 'hosts stopped answering: placement leaves them out until they answer again');
    if (back.length > 0) this.logger.log({ hosts: back.map((h) => h.name) }, 'hosts answer again: placement uses them again');
  }

  private async removeFromHypervisor(hypervisorId: string, target?: HypervisorTarget): Promise<boolean> {
    try {
      await this.gateway.deleteVm(hypervisorId, () => this.random.next(), undefined, target);
      return true;
    } catch (error) {
      if (!(error instanceof HypervisorCallError)) throw error;
      this.logger.error(`Could not delete orphan ${hypervisorId}: ${error.detail}`);
      return false;
    }
  }

  private operation(
    action: OperationAction,
    vmId: string | null,
    hypervisorVmId: string | null,
    now: Date,
    options: { status?: OperationStatus; message?: string; attempts?: number },
  ): OperationEntity {
    const finished = options.status === OperationStatus.Succeeded || options.status === OperationStatus.Failed;
    return Object.assign(new OperationEntity(), {
      id: this.ids.next(),
      vmId,
      action,
      status: options.status ?? OperationStatus.Pending,
      stage: finished ? 'done' : 'queued',
      attempts: options.attempts ?? (finished ? 1 : 0),
      errorCode: options.status === OperationStatus.Failed ? 'hypervisor_error' : null,
      errorMessage: options.message ?? null,
      userId: null,
      hypervisorVmId,
      requestId: null,
      leaseOwner: null,
      leaseExpiresAt: null,
      startedAt: finished ? now : null,
      finishedAt: finished ? now : null,
    });
  }
}

function toReport(run: ReconciliationRunEntity, installationId: string): ReconciliationReportDto {
  return {
    id: run.id,
    installation_id: installationId,
    started_at: run.startedAt.toISOString(),
    finished_at: run.finishedAt ? run.finishedAt.toISOString() : null,
    hypervisor_vms: run.hypervisorVms,
    orphans_found: run.orphansFound,
    orphans_removed: run.orphansRemoved,
    stuck_operations_resumed: run.stuckOperationsResumed,
    missing_vms_failed: run.missingVmsFailed,
    foreign_vms: run.foreignVms,
    drift: JSON.parse(run.details) as DriftDto[],
    error: run.error,
  };
}
