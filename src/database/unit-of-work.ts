import { Injectable, Optional } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type BetterSqlite3 from 'better-sqlite3';
import { DataSource, EntityManager, QueryRunner } from 'typeorm';
import { SqliteCheckpointerService } from './sqlite-checkpointer';

/**
 * A transaction, or a read, as repositories see it: TypeORM's entity manager
 * on the unit's connection. Repositories take it explicitly, so the same
 * query serves a read and a write transaction.
 */
export type Tx = EntityManager;

export type DatabaseKind = 'sqlite' | 'postgres';

/** What to call when the unit of work running on each entity manager ends: committed, or not. */
type SettledHook = (committed: boolean) => void;

/**
 * The hooks of the unit of work on each entity manager: on PostgreSQL one list per transaction's manager; on
 * SQLite the list of the unit running on the shared manager now (units run one at a time there).
 */
const settledHooks = new WeakMap<EntityManager, SettledHook[]>();

/**
 * Calls `hook(true)` once what the unit of work `tx` belongs to wrote is committed, and `hook(false)` if it
 * ends without committing (it threw, its savepoint was rolled back, or its group's COMMIT failed). For
 * in-memory state that mirrors a write before the write is durable, such as the fleet's placement snapshot.
 * Outside a UnitOfWork transaction (a read, or a test's own transaction) there is nothing to wait for: the
 * hook is dropped, and this returns false.
 */
export function onSettled(tx: Tx, hook: SettledHook): boolean {
  const hooks = settledHooks.get(tx);
  hooks?.push(hook);
  return hooks !== undefined;
}

function runHooks(hooks: readonly SettledHook[], committed: boolean): void {
  for (const hook of hooks) hook(committed);
}

interface QueuedUnit {
  work: (tx: Tx) => Promise<unknown>;
  write: boolean;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** At most this many units share one SQLite commit. */
const MAX_GROUP = 64;

/** How soon a lost LISTEN connection is tried again. */
const LISTEN_RETRY_MS = 1000;

/** The part of a node-postgres client that listen() uses. */
interface ListeningClient {
  query(sql: string): Promise<unknown>;
  on(event: 'notification', listener: (message: { channel: string; payload?: string }) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
}

/**
 * One transaction per request or job, always TypeORM's.
 *
 * PostgreSQL: each unit is `DataSource.transaction()` on a pooled connection;
 * row locks do the rest.
 *
 * SQLite has one connection (TypeORM's better-sqlite3 driver hands out a
 * single query runner), so units run one at a time, and units waiting
 * together share one commit (group commit): one transaction on the query
 * runner, each write unit inside its own nested TypeORM transaction (a
 * SAVEPOINT), so a unit that throws is rolled back alone, and no unit's
 * result is handed back before the COMMIT that makes it durable. A commit
 * writes every page the group touched once instead of once per unit, which
 * is most of the cost of a write on SQLite. Reads join the same queue so they
 * never see another unit's uncommitted changes. Each commit that wrote is
 * signalled to the checkpointer thread, which copies the log into the
 * database file off the event loop (sqlite-checkpointer.ts).
 */
@Injectable()
export class UnitOfWork {
  readonly kind: DatabaseKind;
  private readonly queue: QueuedUnit[] = [];
  private draining = false;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Optional() private readonly checkpointer?: SqliteCheckpointerService,
  ) {
    this.kind = dataSource.options.type === 'postgres' ? 'postgres' : 'sqlite';
  }

  get isPostgres(): boolean {
    return this.kind === 'postgres';
  }

  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    if (this.isPostgres) return this.postgresTransaction(work);
    return this.enqueue(work, true);
  }

  private async postgresTransaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    const hooks: SettledHook[] = [];
    let result: T;
    try {
      result = await this.dataSource.transaction((tx) => {
        settledHooks.set(tx, hooks);
        return work(tx);
      });
    } catch (error) {
      runHooks(hooks, false);
      throw error;
    }
    runHooks(hooks, true);
    return result;
  }

  /** Reads outside a transaction (PostgreSQL: autocommit statements on the pool). */
  read<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    if (this.isPostgres) return work(this.dataSource.manager);
    return this.enqueue(work, false);
  }

  /**
   * Runs `work` only if no other process is running it under the same key
   * (a PostgreSQL session advisory lock); returns null when another holds it.
   * SQLite serves a single process, so there the work always runs.
   */
  async exclusively<T>(key: number, work: () => Promise<T>): Promise<T | null> {
    if (!this.isPostgres) return work();
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

  /**
   * Serialises the rest of the transaction with every other transaction that
   * takes the same key (PostgreSQL: a transaction-level advisory lock, held to
   * COMMIT). SQLite transactions are serial already.
   */
  async serialise(tx: Tx, key: number): Promise<void> {
    if (this.isPostgres) await tx.query('SELECT pg_advisory_xact_lock($1)', [key]);
  }

  /**
   * Tells every replica's listen(channel) `payload` when this transaction commits (PostgreSQL NOTIFY, which
   * is delivered at COMMIT and not at all on ROLLBACK). SQLite serves a single process: nobody to tell.
   */
  async notify(tx: Tx, channel: string, payload: string): Promise<void> {
    if (this.isPostgres) await tx.query('SELECT pg_notify($1, $2)', [channel, payload]);
  }

  /**
   * Calls `onPayload` for each notify(channel) any replica commits, over a pooled connection kept for it
   * (LISTEN). `onLive(false)` when that connection is lost, since notifications may be missed from then on,
   * and `onLive(true)` once it listens again (retried every LISTEN_RETRY_MS). SQLite: live at once, as every
   * change is made in this process. Returns what stops it.
   */
  async listen(channel: string, onPayload: (payload: string) => void, onLive: (live: boolean) => void): Promise<() => void> {
    if (!this.isPostgres) {
      onLive(true);
      return () => undefined;
    }
    const driver = this.dataSource.driver as unknown as { obtainMasterConnection(): Promise<[ListeningClient, (error?: unknown) => void]>; escape(name: string): string };
    let stopped = false;
    let current: { client: ListeningClient; release: (error?: unknown) => void } | null = null;
    let retry: NodeJS.Timeout | null = null;
    const retryLater = () => {
      if (!stopped) retry = setTimeout(() => void connect(), LISTEN_RETRY_MS);
    };
    const drop = (client: ListeningClient, error?: unknown) => {
      if (current?.client !== client) return;
      current.release(error ?? new Error('listening stopped'));
      current = null;
      onLive(false);
      retryLater();
    };
    const connect = async (): Promise<void> => {
      retry = null;
      if (stopped) return;
      let client: ListeningClient;
      try {
        const [obtained, release] = await driver.obtainMasterConnection();
        client = obtained;
        current = { client, release };
      } catch {
        retryLater();
        return;
      }
      client.on('notification', (message) => {
        if (message.channel === channel && message.payload) onPayload(message.payload);
      });
      client.on('error', (error) => drop(client, error));
      client.on('end', () => drop(client));
      try {
        await client.query(`LISTEN ${driver.escape(channel)}`);
        if (current?.client === client) onLive(true);
      } catch (error) {
        drop(client, error);
      }
    };
    await connect();
    return () => {
      stopped = true;
      if (retry) clearTimeout(retry);
      // Released with an error, so the pool closes this connection rather than hand it out still listening.
      if (current) drop(current.client);
    };
  }

  /** A trivial round trip, for readiness checks. */
  async ping(): Promise<void> {
    await this.read((tx) => tx.query('SELECT 1'));
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
    const runner = this.dataSource.createQueryRunner();
    try {
      while (this.queue.length > 0) await this.runGroup(runner, this.queue.splice(0, MAX_GROUP));
    } finally {
      this.draining = false;
    }
  }

  private async runGroup(runner: QueryRunner, group: QueuedUnit[]): Promise<void> {
    const outcomes: { ok: boolean; value: unknown; hooks: SettledHook[] }[] = [];
    // A savepoint per write unit only when another write shares the commit: alone, a failure rolls everything back.
    const isolate = group.filter((unit) => unit.write).length > 1;
    let open = group.some((unit) => unit.write);
    if (open) await runner.startTransaction();
    for (const unit of group) {
      const savepoint = isolate && unit.write;
      const hooks: SettledHook[] = [];
      // A read writes nothing to settle.
      if (unit.write) settledHooks.set(runner.manager, hooks);
      else settledHooks.delete(runner.manager);
      try {
        if (savepoint) await runner.startTransaction();
        const value = await unit.work(runner.manager);
        if (savepoint) await runner.commitTransaction();
        outcomes.push({ ok: true, value, hooks });
      } catch (error) {
        outcomes.push({ ok: false, value: error, hooks });
        runHooks(hooks, false);
        if (!unit.write || !open) continue;
        if (!this.sqliteConnection().inTransaction) {
          // SQLite rolled the whole transaction back (e.g. disk full): nothing written before this unit survived either.
          for (const outcome of outcomes) {
            if (outcome.ok) {
              Object.assign(outcome, { ok: false, value: error });
              runHooks(outcome.hooks, false);
            }
          }
          resetTransactionState(runner);
          open = false;
          if (group.indexOf(unit) < group.length - 1) {
            await runner.startTransaction();
            open = true;
          }
        } else if (savepoint) {
          await runner.rollbackTransaction();
        } else {
          await runner.rollbackTransaction();
          open = false;
        }
      }
    }
    settledHooks.delete(runner.manager);
    if (open) {
      try {
        await runner.commitTransaction();
      } catch (error) {
        if (this.sqliteConnection().inTransaction) await runner.rollbackTransaction().catch(() => undefined);
        resetTransactionState(runner);
        for (const outcome of outcomes) if (outcome.ok) runHooks(outcome.hooks, false);
        for (const unit of group) unit.reject(error);
        return;
      }
      this.checkpointer?.committed();
    }
    for (const outcome of outcomes) if (outcome.ok) runHooks(outcome.hooks, true);
    group.forEach((unit, i) => (outcomes[i].ok ? unit.resolve(outcomes[i].value) : unit.reject(outcomes[i].value)));
  }

  private sqliteConnection(): BetterSqlite3.Database {
    return (this.dataSource.driver as unknown as { databaseConnection: BetterSqlite3.Database }).databaseConnection;
  }
}

/**
 * After SQLite ended a transaction on its own, TypeORM's query runner still
 * counts it as open; this puts its bookkeeping back to "no transaction".
 */
function resetTransactionState(runner: QueryRunner): void {
  Object.assign(runner as unknown as { isTransactionActive: boolean; transactionDepth: number }, {
    isTransactionActive: false,
    transactionDepth: 0,
  });
}
