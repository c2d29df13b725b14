import { Injectable } from '@nestjs/common';
import type BetterSqlite3 from 'better-sqlite3';
import { DataSource, EntityManager, QueryRunner } from 'typeorm';
import { AsyncMutex } from '../common/async-mutex';
import { SqlDialect } from './sql-dialect';

/** A transaction (or a read) as repositories see it. */
export interface Tx {
  readonly dialect: SqlDialect;
  /** TypeORM's entity manager on the same connection, for the non-hot paths that use entities. */
  readonly manager: EntityManager;
  rows<T>(sql: string, params?: unknown[]): Promise<T[]>;
  one<T>(sql: string, params?: unknown[]): Promise<T | undefined>;
  /** Runs a write and returns the number of rows it changed. */
  run(sql: string, params?: unknown[]): Promise<number>;
}

/** PostgreSQL: SQL through TypeORM's query runner, one pooled connection per transaction. */
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
 * SQLite: SQL straight on the better-sqlite3 connection TypeORM opened, with
 * prepared statements cached by text. Profiling showed TypeORM's per-query
 * machinery (subscriber broadcasts, several awaits per statement) costing more
 * than SQLite itself on the create/delete path; the connection, schema and
 * entities are still TypeORM's.
 */
class SqliteTx implements Tx {
  constructor(
    readonly dialect: SqlDialect,
    private readonly db: BetterSqlite3.Database,
    private readonly statements: Map<string, BetterSqlite3.Statement>,
    readonly manager: EntityManager,
  ) {}

  rows<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    try {
      const [statement, values] = this.prepare(sql, params);
      return Promise.resolve(statement.all(...values) as T[]);
    } catch (error) {
      return Promise.reject(asQueryError(error, sql));
    }
  }

  async one<T>(sql: string, params: unknown[] = []): Promise<T | undefined> {
    return (await this.rows<T>(sql, params))[0];
  }

  run(sql: string, params: unknown[] = []): Promise<number> {
    try {
      const [statement, values] = this.prepare(sql, params);
      return Promise.resolve(statement.reader ? statement.all(...values).length : statement.run(...values).changes);
    } catch (error) {
      return Promise.reject(asQueryError(error, sql));
    }
  }

  private prepare(sql: string, params: unknown[]): [BetterSqlite3.Statement, unknown[]] {
    const [text, values] = this.dialect.bind(sql, params);
    let statement = this.statements.get(text);
    if (!statement) {
      statement = this.db.prepare(text);
      this.statements.set(text, statement);
    }
    return [statement, values];
  }
}

/** Gives raw driver errors the `driverError` shape TypeORM's QueryFailedError has, so constraintViolation() reads both. */
function asQueryError(error: unknown, sql: string): Error {
  const wrapped = new Error(`${(error as Error)?.message ?? String(error)} (in: ${sql.trim().split(/\s+/).slice(0, 6).join(' ')} …)`);
  Object.assign(wrapped, { name: 'QueryFailedError', driverError: error });
  return wrapped;
}

/**
 * One transaction per request or job. On SQLite every unit of work runs
 * alone, because there is a single connection shared by every request; on
 * PostgreSQL each gets a pooled connection and row locks do the rest.
 */
@Injectable()
export class UnitOfWork {
  private readonly sqliteLock = new AsyncMutex();
  private readonly statements = new Map<string, BetterSqlite3.Statement>();

  constructor(
    private readonly dataSource: DataSource,
    readonly dialect: SqlDialect,
  ) {}

  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    if (this.dialect.isPostgres) {
      return this.dataSource.transaction((manager) => work(new QueryRunnerTx(this.dialect, manager.queryRunner!)));
    }
    return this.sqliteLock.run(async () => {
      const db = this.sqlite();
      db.exec('BEGIN');
      try {
        const result = await work(this.sqliteTx(db));
        db.exec('COMMIT');
        return result;
      } catch (error) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw error;
      }
    });
  }

  /** Reads outside a transaction (PostgreSQL: autocommit on a pooled connection). */
  read<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    if (!this.dialect.isPostgres) return this.sqliteLock.run(() => work(this.sqliteTx(this.sqlite())));
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

  private sqlite(): BetterSqlite3.Database {
    return (this.dataSource.driver as unknown as { databaseConnection: BetterSqlite3.Database }).databaseConnection;
  }

  private sqliteTx(db: BetterSqlite3.Database): Tx {
    return new SqliteTx(this.dialect, db, this.statements, this.dataSource.manager);
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
