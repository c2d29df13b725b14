import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { IdGenerator } from '../common/id-generator';
import { PreparedStatements } from '../database/prepared-statements';
import { on } from '../database/repository-on';
import type { Tx } from '../database/unit-of-work';
import { milliGpuOf } from '../fleet/domain/gpu-profiles';
import { UsageEventEntity, UsageEventKind } from './usage-event.entity';
import { VmEntity } from './vm.entity';

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

  /**
   * What a usage report over [start, end) needs: the owner's events before `end` of every VM that was not
   * deleted before `start` (earlier events give the state the window opens with), per VM in time order.
   */
  listForReport(tx: Tx, ownerId: string, start: Date, end: Date): Promise<UsageEventEntity[]> {
    return on(this.events, tx)
      .createQueryBuilder('e')
      .innerJoin(VmEntity, 'v', 'v.id = e.vm_id')
      .where('e.owner_id = :ownerId', { ownerId })
      .andWhere('e.at < :end', { end })
      .andWhere('(v.deleted_at IS NULL OR v.deleted_at >= :start)', { start })
      .orderBy('e.vm_id')
      .addOrderBy('e.at')
      .addOrderBy('e.id')
      .getMany();
  }

  /** A VM's events, oldest first. */
  listForVm(tx: Tx, vmId: string): Promise<UsageEventEntity[]> {
    return on(this.events, tx).find({ where: { vmId }, order: { at: 'ASC', id: 'ASC' } });
  }
}
