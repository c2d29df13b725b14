import { Injectable } from '@nestjs/common';
import type BetterSqlite3 from 'better-sqlite3';
import { DataSource, EntityManager, QueryRunner } from 'typeorm';
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

interface PgClient {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

/**
 * Statement names for node-postgres: a named statement is parsed and planned
 * once per connection and then only bound and executed, where an unnamed one
 * is parsed and planned on every call. The SQL here is a fixed set of texts.
 */
const pgStatementNames = new Map<string, string>();

function pgQuery(sql: string, values: unknown[]): { name: string; text: string; values: unknown[] } {
  let name = pgStatementNames.get(sql);
  if (name === undefined) {
    name = `vmplane_${pgStatementNames.size + 1}`;
    pgStatementNames.set(sql, name);
  }
  return { name, text: sql, values };
}

/**
 * PostgreSQL: SQL straight on the pooled node-postgres client under a TypeORM
 * query runner (which owns the connection and the transaction, and whose
 * entity manager runs on the same client). As on SQLite, TypeORM's
 * per-statement machinery is skipped on the hot paths.
 */
class PostgresTx implements Tx {
  constructor(
    readonly dialect: SqlDialect,
    private readonly runner: QueryRunner,
    private readonly client: PgClient,
  ) {}

  get manager(): EntityManager {
    return this.runner.manager;
  }

  async rows<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    try {
      return (await this.client.query(pgQuery(sql, params))).rows as T[];
    } catch (error) {
      throw asQueryError(error, sql);
    }
  }

  async one<T>(sql: string, params: unknown[] = []): Promise<T | undefined> {
    return (await this.rows<T>(sql, params))[0];
  }

  async run(sql: string, params: unknown[] = []): Promise<number> {
    try {
      const result = await this.client.query(pgQuery(sql, params));
      return result.rowCount ?? result.rows.length;
    } catch (error) {
      throw asQueryError(error, sql);
    }
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
    private readonly statements: Map<string, Prepared>,
    readonly manager: EntityManager,
  ) {}

  rows<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    try {
      const [{ statement, rowOf }, values] = this.prepare(sql, params);
      return Promise.resolve((rowOf ? (statement.all(...values) as unknown[][]).map(rowOf) : statement.all(...values)) as T[]);
    } catch (error) {
      return Promise.reject(asQueryError(error, sql));
    }
  }

  async one<T>(sql: string, params: unknown[] = []): Promise<T | undefined> {
    return (await this.rows<T>(sql, params))[0];
  }

  run(sql: string, params: unknown[] = []): Promise<number> {
    try {
      const [{ statement }, values] = this.prepare(sql, params);
      return Promise.resolve(statement.reader ? statement.all(...values).length : statement.run(...values).changes);
    } catch (error) {
      return Promise.reject(asQueryError(error, sql));
    }
  }

  private prepare(sql: string, params: unknown[]): [Prepared, unknown[]] {
    const [text, values] = this.dialect.bind(sql, params);
    let prepared = this.statements.get(text);
    if (!prepared) {
      const statement = this.db.prepare(text);
      prepared = { statement, rowOf: statement.reader ? rowFactory(statement) : null };
      this.statements.set(text, prepared);
    }
    return [prepared, values];
  }
}

/** A cached statement; a reader also has the factory that builds its row objects. */
interface Prepared {
  statement: BetterSqlite3.Statement;
  rowOf: ((values: unknown[]) => Record<string, unknown>) | null;
}

/**
 * Reads rows as arrays and builds each object with one literal whose shape
 * V8 compiles once per statement. better-sqlite3 builds row objects a
 * property at a time: on a 50-row page of VMs that was two thirds of the
 * query's cost (488 µs against 158 µs). Later duplicate column names win, as
 * they do in better-sqlite3's own objects. Column names come from our SQL.
 */
function rowFactory(statement: BetterSqlite3.Statement): (values: unknown[]) => Record<string, unknown> {
  statement.raw(true);
  const fields = statement.columns().map((column, i) => `${JSON.stringify(column.name)}: v[${i}]`);
  return new Function('v', `return { ${fields.join(', ')} };`) as (values: unknown[]) => Record<string, unknown>;
}

/** Gives raw driver errors the `driverError` shape TypeORM's QueryFailedError has, so constraintViolation() reads both. */
function asQueryError(error: unknown, sql: string): Error {
  const wrapped = new Error(`${(error as Error)?.message ?? String(error)} (in: ${sql.trim().split(/\s+/).slice(0, 6).join(' ')} …)`);
  Object.assign(wrapped, { name: 'QueryFailedError', driverError: error });
  return wrapped;
}

interface QueuedUnit {
  work: (tx: Tx) => Promise<unknown>;
  write: boolean;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

type ControlStatements = Record<'begin' | 'commit' | 'rollback' | 'savepoint' | 'release' | 'rollbackTo', BetterSqlite3.Statement>;

function controlStatements(db: BetterSqlite3.Database): ControlStatements {
  return {
    begin: db.prepare('BEGIN'),
    commit: db.prepare('COMMIT'),
    rollback: db.prepare('ROLLBACK'),
    savepoint: db.prepare('SAVEPOINT unit'),
    release: db.prepare('RELEASE unit'),
    rollbackTo: db.prepare('ROLLBACK TO unit'),
  };
}

/** At most this many units share one SQLite commit. */
const MAX_GROUP = 64;

/**
 * One transaction per request or job.
 *
 * PostgreSQL: each unit gets a pooled connection and its own transaction; row
 * locks do the rest.
 *
 * SQLite: there is one connection, so units run one at a time, and units
 * that are waiting together share a commit (group commit): the group runs in
 * one BEGIN … COMMIT, each unit inside its own SAVEPOINT so a unit that
 * throws is rolled back alone, and no unit's result is handed back before the
 * COMMIT that makes it durable. A commit writes every page the group
 * touched once, instead of once per unit, which is most of the cost of a
 * write on SQLite. Reads join the same queue so they never see another unit's
 * uncommitted changes.
 */
@Injectable()
export class UnitOfWork {
  private readonly statements = new Map<string, Prepared>();
  private readonly queue: QueuedUnit[] = [];
  private control: ControlStatements | null = null;
  private draining = false;

  constructor(
    private readonly dataSource: DataSource,
    readonly dialect: SqlDialect,
  ) {}

  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    if (this.dialect.isPostgres) return this.postgres(work, true);
    return this.enqueue(work, true);
  }

  /** Reads outside a transaction (PostgreSQL: autocommit on a pooled connection). */
  read<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    if (!this.dialect.isPostgres) return this.enqueue(work, false);
    return this.postgres(work, false);
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

  private enqueue<T>(work: (tx: Tx) => Promise<T>, write: boolean): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, write, resolve: resolve as (value: unknown) => void, reject });
      if (!this.draining) {
        this.draining = true;
        // Let the requests that arrived in this turn of the event loop queue up, then run them as a group.
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    const db = this.sqlite();
    const tx = this.sqliteTx(db);
    // Prepared once: db.exec() parses its SQL on every call, which was 8 % of the server's CPU under load.
    const control = (this.control ??= controlStatements(db));
    try {
      while (this.queue.length > 0) {
        const group = this.queue.splice(0, MAX_GROUP);
        const outcomes: { ok: boolean; value: unknown }[] = [];
        const writes = group.some((unit) => unit.write);
        if (writes) control.begin.run();
        for (const unit of group) {
          if (unit.write) control.savepoint.run();
          try {
            const value = await unit.work(tx);
            if (unit.write) control.release.run();
            outcomes.push({ ok: true, value });
          } catch (error) {
            outcomes.push({ ok: false, value: error });
            if (!writes) continue;
            if (db.inTransaction) {
              control.rollbackTo.run();
              control.release.run();
            } else {
              // SQLite rolled the whole transaction back (e.g. disk full): nothing before this unit survived either.
              for (const outcome of outcomes) Object.assign(outcome, { ok: false, value: error });
              control.begin.run();
            }
          }
        }
        try {
          if (writes) control.commit.run();
        } catch (error) {
          if (db.inTransaction) control.rollback.run();
          for (const unit of group) unit.reject(error);
          continue;
        }
        group.forEach((unit, i) => (outcomes[i].ok ? unit.resolve(outcomes[i].value) : unit.reject(outcomes[i].value)));
      }
    } finally {
      this.draining = false;
    }
  }

  private sqlite(): BetterSqlite3.Database {
    return (this.dataSource.driver as unknown as { databaseConnection: BetterSqlite3.Database }).databaseConnection;
  }

  private sqliteTx(db: BetterSqlite3.Database): Tx {
    return new SqliteTx(this.dialect, db, this.statements, this.dataSource.manager);
  }

  /** A pooled connection for the unit of work; in a transaction when it writes. */
  private async postgres<T>(work: (tx: Tx) => Promise<T>, write: boolean): Promise<T> {
    const runner = this.dataSource.createQueryRunner();
    try {
      const client = (await runner.connect()) as PgClient;
      const tx = new PostgresTx(this.dialect, runner, client);
      if (!write) return await work(tx);
      await runner.startTransaction();
      try {
        const result = await work(tx);
        await runner.commitTransaction();
        return result;
      } catch (error) {
        if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
        throw error;
      }
    } finally {
      await runner.release();
    }
  }

}
