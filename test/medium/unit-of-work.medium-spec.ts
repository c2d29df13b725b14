import { Logger } from '@nestjs/common';
import Database from 'better-sqlite3';
import { DataSource } from 'typeorm';
import { constraintViolation } from '../../src/database/constraint-violation';
import { MIGRATIONS, dataSourceOptions } from '../../src/database/data-source-options';
import { MigrationRunner } from '../../src/database/migration-runner';
import { UnitOfWork, onSettled } from '../../src/database/unit-of-work';
import { UserEntity } from '../../src/users/user.entity';
import { createTestDatabase } from '../support/postgres';
import {
  DB_KINDS,
  TestDatabase,
  deferred,
  errorOf,
  one,
  openTestDatabase,
  reportSkippedPostgres,
  rows,
  run,
  scalar,
  sleep,
  useTestDatabase,
} from './support/database';
import { at, insertUser, userEntity } from './support/fixtures';

/**
 * The usernames a second, independent connection sees: what was committed to
 * the file, not what the unit of work's own connection has pending.
 */
function committedUsernames(db: TestDatabase): string[] {
  const file = (db.dataSource.options as { database: string }).database;
  const reader = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return (reader.prepare('SELECT username FROM users ORDER BY username').all() as { username: string }[]).map((r) => r.username);
  } finally {
    reader.close();
  }
}

describe.each(DB_KINDS)('UnitOfWork on %s', (kind) => {
  const db = useTestDatabase(kind);
  const countUsers = () => db().uow.read((tx) => scalar(tx, 'SELECT COUNT(*) AS n FROM users'));

  it('commits what the work wrote and returns its result', async () => {
    const id = await db().uow.transaction((tx) => insertUser(tx, { username: 'kept' }));
    expect(await db().uow.read((tx) => one<{ id: string }>(tx, 'SELECT id FROM users WHERE username = $1', ['kept']))).toEqual({ id });
  });

  it('rolls back everything when the work throws, and rethrows the same error', async () => {
    const boom = new Error('boom');
    const error = await errorOf(() =>
      db().uow.transaction(async (tx) => {
        await insertUser(tx, { username: 'first' });
        await insertUser(tx, { username: 'second' });
        throw boom;
      }),
    );
    expect(error).toBe(boom);
    expect(await countUsers()).toBe(0);
  });

  it('units that run together keep their own outcomes: one failing unit does not undo the others (group commit)', async () => {
    const taken = await db().uow.transaction((tx) => insertUser(tx, { username: 'taken' }));
    const boom = new Error('boom');
    const results = await Promise.allSettled([
      db().uow.transaction((tx) => insertUser(tx, { username: 'g1' })),
      db().uow.transaction(async (tx) => {
        await insertUser(tx, { username: 'g2' });
        throw boom;
      }),
      // Collides with a committed row, so on PostgreSQL the outcome does not depend on which connection runs first.
      db().uow.transaction((tx) => insertUser(tx, { username: 'taken' })),
      db().uow.transaction((tx) => insertUser(tx, { username: 'g3' })),
      db().uow.read((tx) => scalar(tx, 'SELECT COUNT(*) AS n FROM users')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toBe(boom);
    expect(constraintViolation((results[2] as PromiseRejectedResult).reason)?.kind).toBe('unique');
    const names = await db().uow.read((tx) => rows<{ id: string; username: string }>(tx, 'SELECT id, username FROM users ORDER BY username'));
    expect(names.map((r) => r.username)).toEqual(['g1', 'g3', 'taken']);
    // Each surviving unit got its own result back: the id of the row it wrote.
    expect([(results[0] as PromiseFulfilledResult<string>).value, (results[3] as PromiseFulfilledResult<string>).value, taken]).toEqual(
      names.map((r) => r.id),
    );
  });

  it("onSettled tells each unit's hooks whether that unit's writes were committed, grouped units included, and only once it is settled", async () => {
    const settled: string[] = [];
    const unit = (name: string, fail: 'no' | 'throws' | 'violates') =>
      db().uow.transaction(async (tx) => {
        expect(onSettled(tx, (committed) => settled.push(`${name} ${committed ? 'committed' : 'not committed'}`))).toBe(true);
        await insertUser(tx, { username: fail === 'violates' ? 'taken' : name });
        if (fail === 'throws') throw new Error(`${name} failed`);
        // Not told anything while its work runs.
        return settled.some((s) => s.startsWith(`${name} `));
      });
    await db().uow.transaction((tx) => insertUser(tx, { username: 'taken' }));
    const results = await Promise.allSettled([unit('r1', 'no'), unit('r2', 'throws'), unit('r3', 'no'), unit('r4', 'violates'), unit('r5', 'no')]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
    expect(settled.sort()).toEqual(['r1 committed', 'r2 not committed', 'r3 committed', 'r4 not committed', 'r5 committed']);
    for (const r of results) if (r.status === 'fulfilled') expect(r.value).toBe(false);
    // Outside a transaction there is nothing to wait for: the hook is dropped, and the caller told so.
    expect(await db().uow.read(async (tx) => onSettled(tx, () => settled.push('read')))).toBe(false);
    expect(settled).toHaveLength(5);
  });

  if (kind === 'sqlite') {
    it('SQLite only: units queued together share one COMMIT; a unit that throws after writing is rolled back alone, and no result is handed back before the COMMIT', async () => {
      const boom = new Error('boom after writing');
      const order: string[] = [];
      /** A write unit that records when it ran and, once its promise settles, what another connection sees committed. */
      const unit = (name: string, fail = false) =>
        db()
          .uow.transaction(async (tx) => {
            await insertUser(tx, { username: name });
            order.push(`ran ${name}`);
            if (fail) throw boom;
            return name;
          })
          .then(
            (value) => ({ value, committed: committedUsernames(db()) }),
            (error: unknown) => ({ error, committed: committedUsernames(db()) }),
          );
      // Queued in one turn of the event loop, so the unit of work runs them as one group.
      const outcomes = await Promise.all([unit('u1'), unit('u2', true), unit('u3'), unit('u4')]);

      expect(order).toEqual(['ran u1', 'ran u2', 'ran u3', 'ran u4']);
      expect(outcomes).toEqual([
        // u1's result was held until u4, queued after it, had run and the group had committed.
        { value: 'u1', committed: ['u1', 'u3', 'u4'] },
        { error: boom, committed: ['u1', 'u3', 'u4'] },
        { value: 'u3', committed: ['u1', 'u3', 'u4'] },
        { value: 'u4', committed: ['u1', 'u3', 'u4'] },
      ]);
      expect(await db().uow.read((tx) => scalar(tx, `SELECT COUNT(*) AS n FROM users WHERE username = 'u2'`))).toBe(0);
      // The connection is left with no transaction open: the next unit commits on its own.
      await db().uow.transaction((tx) => insertUser(tx, { username: 'u5' }));
      expect(committedUsernames(db())).toEqual(['u1', 'u3', 'u4', 'u5']);
    });
  }

  it("a unit may write with the entity manager's save() (TypeORM joins the unit's transaction instead of starting another), alone and grouped", async () => {
    db().clock.set(at(5_000));
    const alone = userEntity({ username: 'saved-alone' });
    await db().uow.transaction((tx) => tx.save(alone));
    const stored = await db().uow.read((tx) => tx.findOneBy(UserEntity, { id: alone.id }));
    expect(stored).toMatchObject({ username: 'saved-alone', createdAt: at(5_000), updatedAt: at(5_000) });

    const boom = new Error('boom after save');
    const results = await Promise.allSettled([
      db().uow.transaction((tx) => tx.save(userEntity({ username: 's1' }))),
      db().uow.transaction(async (tx) => {
        await tx.getRepository(UserEntity).save(userEntity({ username: 's2' }));
        throw boom;
      }),
      db().uow.transaction(async (tx) => {
        // save() of a loaded entity is an update through the same manager.
        const user = (await tx.findOneBy(UserEntity, { id: alone.id }))!;
        user.quotaVms = 7;
        await tx.getRepository(UserEntity).save(user);
        return tx.save(userEntity({ username: 's3' }));
      }),
      // A nested TypeORM transaction inside a unit becomes a savepoint of the unit's transaction.
      db().uow.transaction((tx) => tx.transaction((inner) => inner.save(userEntity({ username: 's4' })))),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toBe(boom);
    const names = await db().uow.read((tx) => rows<{ username: string }>(tx, 'SELECT username FROM users ORDER BY username'));
    expect(names.map((r) => r.username)).toEqual(['s1', 's3', 's4', 'saved-alone']);
    expect(await db().uow.read((tx) => tx.findOneBy(UserEntity, { id: alone.id }))).toMatchObject({ quotaVms: 7 });
  });

  it('rolls back the earlier statements when a later one violates a constraint; the unit of work stays usable', async () => {
    await errorOf(() =>
      db().uow.transaction(async (tx) => {
        await insertUser(tx, { username: 'a' });
        await insertUser(tx, { username: 'a' });
      }),
    );
    expect(await countUsers()).toBe(0);
    await db().uow.transaction((tx) => insertUser(tx, { username: 'a' }));
    expect(await countUsers()).toBe(1);
  });

  it('the test helpers: run() reports the number of rows a write changed; rows()/one() bind $n parameters, repeated and out of order', async () => {
    await db().uow.transaction(async (tx) => {
      await insertUser(tx, { username: 'u1' });
      await insertUser(tx, { username: 'u2' });
      await insertUser(tx, { username: 'u3' });
    });
    expect(await db().uow.transaction((tx) => run(tx, `UPDATE users SET role = $1 WHERE username <> $2`, ['admin', 'u2']))).toBe(2);
    expect(await db().uow.transaction((tx) => run(tx, `UPDATE users SET role = 'x' WHERE username = 'nobody'`))).toBe(0);
    // Outside a transaction too (PostgreSQL: the pool's manager has no query runner of its own).
    expect(await db().uow.read((tx) => run(tx, `UPDATE users SET role = $1 WHERE username = $2`, ['member', 'u2']))).toBe(1);
    const row = await db().uow.read((tx) =>
      one<{ a: string; b: string }>(tx, `SELECT $2 AS a, username AS b FROM users WHERE username = $1 OR username = $1`, ['u3', 'lit']),
    );
    expect(row).toEqual({ a: 'lit', b: 'u3' });
    expect(await db().uow.read((tx) => one(tx, 'SELECT id FROM users WHERE username = $1', ['nobody']))).toBeUndefined();
  });

  it('parallel transactions on the same rows do not lose updates', async () => {
    const id = await db().uow.transaction((tx) => insertUser(tx));
    await Promise.all(
      Array.from({ length: 20 }, () => db().uow.transaction((tx) => run(tx, 'UPDATE users SET used_vms = used_vms + 1 WHERE id = $1', [id]))),
    );
    expect(await db().uow.read((tx) => scalar(tx, 'SELECT used_vms AS n FROM users WHERE id = $1', [id]))).toBe(20);
  });

  it('exclusively() runs the work and returns its result', async () => {
    expect(await db().uow.exclusively(42, async () => 'ran')).toBe('ran');
  });

  if (kind === 'postgres') {
    it('PostgreSQL only: exclusively() returns null while another holder has the key, and works again once it is released', async () => {
      const release = deferred();
      const entered = deferred();
      const first = db().uow.exclusively(7, async () => {
        entered.resolve();
        await release.promise;
        return 'first';
      });
      await entered.promise;
      let secondRan = false;
      expect(await db().uow.exclusively(7, async () => (secondRan = true))).toBeNull();
      expect(secondRan).toBe(false);
      expect(await db().uow.exclusively(8, async () => 'other key')).toBe('other key');
      release.resolve();
      expect(await first).toBe('first');
      expect(await db().uow.exclusively(7, async () => 'again')).toBe('again');
    });

    it('PostgreSQL only: exclusively() releases the key when the work throws', async () => {
      await expect(db().uow.exclusively(9, async () => Promise.reject(new Error('x')))).rejects.toThrow('x');
      expect(await db().uow.exclusively(9, async () => 'free')).toBe('free');
    });

    it('PostgreSQL only: a read does not see another transaction’s uncommitted writes', async () => {
      const commit = deferred();
      const written = deferred();
      const tx = db().uow.transaction(async (t) => {
        await insertUser(t, { username: 'pending' });
        written.resolve();
        await commit.promise;
      });
      await written.promise;
      expect(await countUsers()).toBe(0);
      commit.resolve();
      await tx;
      expect(await countUsers()).toBe(1);
    });
  }

  it('listen hears what notify says in transactions that commit, once each, and nothing from one that rolls back', async () => {
    const heard: string[] = [];
    const live: boolean[] = [];
    const stop = await db().uow.listen('vmplane_medium_test', (payload) => heard.push(payload), (up) => live.push(up));
    try {
      expect(live).toEqual([true]);
      await db().uow.transaction((tx) => db().uow.notify(tx, 'vmplane_medium_test', 'committed'));
      await errorOf(() => db().uow.transaction(async (tx) => {
        await db().uow.notify(tx, 'vmplane_medium_test', 'rolled-back');
        throw new Error('no');
      }));
      await db().uow.transaction((tx) => db().uow.notify(tx, 'another_channel', 'elsewhere'));
      for (let i = 0; i < 50 && heard.length === 0; i++) await sleep(10);
      await sleep(50);
      // SQLite serves one process: there is nobody to tell, and its listener is live without hearing anything.
      expect(heard).toEqual(kind === 'postgres' ? ['committed'] : []);
    } finally {
      stop();
    }
  });

  if (kind === 'postgres') {
    it('PostgreSQL only: a listener whose connection is lost says so, and listens again by itself', async () => {
      const heard: string[] = [];
      const live: boolean[] = [];
      const stop = await db().uow.listen('vmplane_medium_lost', (payload) => heard.push(payload), (up) => live.push(up));
      try {
        const listener = `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN "vmplane_medium_lost"'`;
        const [{ pid }] = await db().uow.read((tx) => rows<{ pid: number }>(tx, listener));
        await db().uow.read((tx) => tx.query('SELECT pg_terminate_backend($1)', [pid]));
        for (let i = 0; i < 300 && live.length < 3; i++) await sleep(10);
        expect(live).toEqual([true, false, true]);
        await db().uow.transaction((tx) => db().uow.notify(tx, 'vmplane_medium_lost', 'after'));
        for (let i = 0; i < 100 && heard.length === 0; i++) await sleep(10);
        expect(heard).toEqual(['after']);
      } finally {
        stop();
      }
    });
  }
});

describe.each(DB_KINDS)('MigrationRunner on %s', (kind) => {
  beforeAll(() => Logger.overrideLogger(false));
  afterAll(() => Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose']));

  it('applies the migrations at start and finds nothing to do on the next start', async () => {
    const db = await openTestDatabase(kind, { migrate: false });
    try {
      await new MigrationRunner(db.dataSource).onModuleInit();
      expect(await db.dataSource.showMigrations()).toBe(false);
      await new MigrationRunner(db.dataSource).onModuleInit();
      expect(await db.uow.read((tx) => scalar(tx, 'SELECT COUNT(*) AS n FROM migrations'))).toBe(MIGRATIONS.length);
    } finally {
      await db.close();
    }
  });

  if (kind === 'postgres') {
    it('PostgreSQL only: replicas starting together (separate pools, same database) apply each migration once', async () => {
      const target = await createTestDatabase('vmplane_medium');
      const replicas = [0, 1, 2].map(() => new DataSource(dataSourceOptions({ kind: 'postgres', url: target.url })));
      try {
        await Promise.all(replicas.map((ds) => ds.initialize()));
        await Promise.all(replicas.map((ds) => new MigrationRunner(ds).onModuleInit()));
        const uow = new UnitOfWork(replicas[0]);
        expect(await uow.read((tx) => scalar(tx, 'SELECT COUNT(*) AS n FROM migrations'))).toBe(MIGRATIONS.length);
        // pg_locks lists the whole server's locks: count only this database's, not those of suites running beside this one.
        const advisory = `SELECT COUNT(*) AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                          WHERE l.locktype = 'advisory' AND d.datname = current_database()`;
        expect(await uow.read((tx) => scalar(tx, advisory))).toBe(0);
      } finally {
        await Promise.all(replicas.map((ds) => (ds.isInitialized ? ds.destroy() : undefined)));
        await sleep(0);
        await target.drop();
      }
    });
  }
});

reportSkippedPostgres('UnitOfWork and MigrationRunner');
