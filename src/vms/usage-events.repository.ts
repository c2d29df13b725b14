import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { IdGenerator } from '../common/id-generator';
import { PreparedStatements } from '../database/prepared-statements';
import { on } from '../database/repository-on';
import type { Tx } from '../database/unit-of-work';
import { milliGpuOf } from '../fleet/domain/gpu-profiles';
import { UsageEventEntity, UsageEventKind } from './usage-event.entity';
import type { VmEntity } from './vm.entity';

/** The metering log: appended in the transactions that change a VM's power or GPUs. */
@Injectable()
export class UsageEventsRepository {
  constructor(
    @InjectRepository(UsageEventEntity) private readonly events: Repository<UsageEventEntity>,
    private readonly statements: PreparedStatements,
    private readonly ids: IdGenerator,
  ) {}

  /**
   * Records `kinds` for the VM at `at`. GPU events carry the VM's GPU count, model, profile and their weight in
   * milli-GPUs (whole or fractional), and are skipped for a VM without GPUs; power events carry none.
   */
  async record(tx: Tx, vm: Pick<VmEntity, 'id' | 'ownerId' | 'gpuCount' | 'gpuModel' | 'gpuProfile'>, at: Date, ...kinds: UsageEventKind[]): Promise<void> {
    for (const kind of kinds) {
      const gpu = kind === UsageEventKind.GpuClaim || kind === UsageEventKind.GpuRelease;
      if (gpu && vm.gpuCount === 0 && !vm.gpuProfile) continue;
      await this.statements.insert(
        tx,
        this.events.target,
        Object.assign(new UsageEventEntity(), {
          id: this.ids.next(),
          vmId: vm.id,
          ownerId: vm.ownerId,
          kind,
          gpuCount: gpu ? vm.gpuCount : 0,
          gpuModel: gpu ? vm.gpuModel : null,
          gpuMilli: gpu ? milliGpuOf(vm) : 0,
          gpuProfile: gpu ? (vm.gpuProfile ?? null) : null,
          at,
        }),
      );
    }
  }

  /** A VM's events, oldest first. */
  listForVm(tx: Tx, vmId: string): Promise<UsageEventEntity[]> {
    return on(this.events, tx).find({ where: { vmId }, order: { at: 'ASC', id: 'ASC' } });
  }
}
