import { Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/database/data-source-options';
import { MigrationRunner } from '../../src/database/migration-runner';
import { SqlDialect } from '../../src/database/sql-dialect';
import { UnitOfWork } from '../../src/database/unit-of-work';
import { createTestDatabase } from '../support/postgres';
import { DB_KINDS, deferred, errorOf, openTestDatabase, reportSkippedPostgres, scalar, sleep, useTestDatabase } from './support/database';
import { insertUser } from './support/fixtures';

describe.each(DB_KINDS)('UnitOfWork on %s', (kind) => {
  const db = useTestDatabase(kind);
  const countUsers = () => db().uow.read((tx) => scalar(tx, 'SELECT COUNT(*) AS n FROM users'));

  it('commits what the work wrote and returns its result', async () => {
    const id = await db().uow.transaction((tx) => insertUser(tx, { username: 'kept' }));
    expect(await db().uow.read((tx) => tx.one<{ id: string }>('SELECT id FROM users WHERE username = $1', ['kept']))).toEqual({ id });
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
    const boom = new Error('boom');
    const results = await Promise.allSettled([
      db().uow.transaction((tx) => insertUser(tx, { username: 'g1' })),
      db().uow.transaction(async (tx) => {
        await insertUser(tx, { username: 'g2' });
        throw boom;
      }),
      db().uow.transaction((tx) => insertUser(tx, { username: 'g1' })),
      db().uow.transaction((tx) => insertUser(tx, { username: 'g3' })),
      db().uow.read((tx) => scalar(tx, 'SELECT COUNT(*) AS n FROM users')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toBe(boom);
    const names = await db().uow.read((tx) => tx.rows<{ username: string }>('SELECT username FROM users ORDER BY username'));
    expect(names.map((r) => r.username)).toEqual(['g1', 'g3']);
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

  it('run() reports the number of rows a write changed; rows()/one() bind $n parameters, repeated and out of order', async () => {
    await db().uow.transaction(async (tx) => {
      await insertUser(tx, { username: 'u1' });
      await insertUser(tx, { username: 'u2' });
      await insertUser(tx, { username: 'u3' });
    });
    expect(await db().uow.transaction((tx) => tx.run(`UPDATE users SET role = $1 WHERE username <> $2`, ['admin', 'u2']))).toBe(2);
    expect(await db().uow.transaction((tx) => tx.run(`UPDATE users SET role = 'x' WHERE username = 'nobody'`))).toBe(0);
    const row = await db().uow.read((tx) =>
      tx.one<{ a: string; b: string }>(`SELECT $2 AS a, username AS b FROM users WHERE username = $1 OR username = $1`, ['u3', 'lit']),
    );
    expect(row).toEqual({ a: 'lit', b: 'u3' });
    expect(await db().uow.read((tx) => tx.one('SELECT id FROM users WHERE username = $1', ['nobody']))).toBeUndefined();
  });

  it('parallel transactions on the same rows do not lose updates', async () => {
    const id = await db().uow.transaction((tx) => insertUser(tx));
    await Promise.all(
      Array.from({ length: 20 }, () => db().uow.transaction((tx) => tx.run('UPDATE users SET used_vms = used_vms + 1 WHERE id = $1', [id]))),
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
});

describe.each(DB_KINDS)('MigrationRunner on %s', (kind) => {
  beforeAll(() => Logger.overrideLogger(false));
  afterAll(() => Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose']));

  it('applies the migrations at start and finds nothing to do on the next start', async () => {
    const db = await openTestDatabase(kind, { migrate: false });
    try {
      await new MigrationRunner(db.dataSource, db.dialect).onModuleInit();
      expect(await db.dataSource.showMigrations()).toBe(false);
      await new MigrationRunner(db.dataSource, db.dialect).onModuleInit();
      expect(await db.uow.read((tx) => scalar(tx, 'SELECT COUNT(*) AS n FROM migrations'))).toBe(1);
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
        await Promise.all(replicas.map((ds) => new MigrationRunner(ds, new SqlDialect('postgres')).onModuleInit()));
        const uow = new UnitOfWork(replicas[0], new SqlDialect('postgres'));
        expect(await uow.read((tx) => scalar(tx, 'SELECT COUNT(*) AS n FROM migrations'))).toBe(1);
        expect(await uow.read((tx) => scalar(tx, `SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory'`))).toBe(0);
      } finally {
        await Promise.all(replicas.map((ds) => (ds.isInitialized ? ds.destroy() : undefined)));
        await sleep(0);
        await target.drop();
      }
    });
  }
});

reportSkippedPostgres('UnitOfWork and MigrationRunner');
