import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager, QueryRunner } from 'typeorm';
import { AsyncMutex } from '../common/async-mutex';
import { SqlDialect } from './sql-dialect';

/** A transaction (or a read) as repositories see it. */
export interface Tx {
  readonly dialect: SqlDialect;
  readonly manager: EntityManager;
  rows<T>(sql: string, params?: unknown[]): Promise<T[]>;
  one<T>(sql: string, params?: unknown[]): Promise<T | undefined>;
  /** Runs a write and returns the number of rows it changed. */
  run(sql: string, params?: unknown[]): Promise<number>;
}

class QueryRunnerTx implements Tx {
  constructor(
    readonly dialect: SqlDialect,
    private readonly runner: QueryRunner,
  ) {}

  get manager(): EntityManager {
    return this.runner.manager;
  }

  async rows<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    const [text, values] = this.dialect.bind(sql, params);
    const result = await this.runner.query(text, values, true);
    return (result.records ?? []) as T[];
  }

  async one<T>(sql: string, params: unknown[] = []): Promise<T | undefined> {
    return (await this.rows<T>(sql, params))[0];
  }

  async run(sql: string, params: unknown[] = []): Promise<number> {
    const [text, values] = this.dialect.bind(sql, params);
    const result = await this.runner.query(text, values, true);
    return result.affected ?? result.records?.length ?? 0;
  }
}

/**
 * One transaction per request or job. On SQLite every unit of work runs
 * alone, because TypeORM shares a single connection there and would
 * otherwise interleave transactions; on PostgreSQL each gets a pooled
 * connection and row locks do the rest.
 */
@Injectable()
export class UnitOfWork {
  private readonly sqliteLock = new AsyncMutex();

  constructor(
    private readonly dataSource: DataSource,
    readonly dialect: SqlDialect,
  ) {}

  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    const run = () =>
      this.dataSource.transaction((manager) => work(new QueryRunnerTx(this.dialect, manager.queryRunner!)));
    return this.dialect.isPostgres ? run() : this.sqliteLock.run(run);
  }

  /** Reads outside a transaction (PostgreSQL: autocommit on a pooled connection). */
  read<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    if (!this.dialect.isPostgres) {
      return this.sqliteLock.run(() => work(new QueryRunnerTx(this.dialect, this.dataSource.createQueryRunner())));
    }
    return this.withPooledRunner(work);
  }

  /**
   * Runs `work` only if no other process is running it under the same key
   * (a PostgreSQL session advisory lock); returns null when another holds it.
   * SQLite serves a single process, so there the work always runs.
   */
  async exclusively<T>(key: number, work: () => Promise<T>): Promise<T | null> {
    if (!this.dialect.isPostgres) return work();
    const runner = this.dataSource.createQueryRunner();
    try {
      const [row] = (await runner.query('SELECT pg_try_advisory_lock($1) AS locked', [key])) as { locked: boolean }[];
      if (!row?.locked) return null;
      try {
        return await work();
      } finally {
        await runner.query('SELECT pg_advisory_unlock($1)', [key]);
      }
    } finally {
      await runner.release();
    }
  }

  private async withPooledRunner<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    const runner = this.dataSource.createQueryRunner();
    try {
      return await work(new QueryRunnerTx(this.dialect, runner));
    } finally {
      await runner.release();
    }
  }
}
