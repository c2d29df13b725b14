import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { on } from '../database/repository-on';
import type { Tx } from '../database/unit-of-work';
import { ReconciliationRunEntity } from './reconciliation-run.entity';

/** One row per reconciliation pass, with its findings; kept, never changed. */
@Injectable()
export class ReconciliationRunsRepository {
  constructor(@InjectRepository(ReconciliationRunEntity) private readonly runs: Repository<ReconciliationRunEntity>) {}

  async insert(tx: Tx, run: ReconciliationRunEntity): Promise<void> {
    await on(this.runs, tx).createQueryBuilder().insert().values(run).updateEntity(false).execute();
  }

  latest(tx: Tx): Promise<ReconciliationRunEntity | null> {
    return on(this.runs, tx).findOne({ where: {}, order: { startedAt: 'DESC' } });
  }
}
