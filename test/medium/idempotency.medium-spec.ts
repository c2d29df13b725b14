import type { ObjectLiteral, Repository } from 'typeorm';
import { IdempotencyKeyReusedError } from '../../src/common/domain-errors';
import type { Tx } from '../../src/database/unit-of-work';
import { IdempotencyKeyEntity } from '../../src/idempotency/idempotency-key.entity';
import { KeyClaim } from '../../src/idempotency/idempotency.repository';
import { DB_KINDS, deferred, errorOf, reportSkippedPostgres, scalar, sleep, useTestDatabase } from './support/database';
import { T0, at, insertUser, insertVm, operation } from './support/fixtures';
import { Repositories, repositoriesOf } from './support/repositories';

const HOUR = 3_600_000;
const HASH_A = 'a'.repeat(64);
const HASH_B = 'b'.repeat(64);

describe.each(DB_KINDS)('IdempotencyRepository on %s', (kind) => {
  const db = useTestDatabase(kind);
  let keys: Repositories['idempotency'];
  let vms: Repositories['vms'];
  let ops: Repositories['ops'];
  beforeEach(() => {
    ({ idempotency: keys, vms, ops } = repositoriesOf(db()));
  });

  let user: string;
  beforeEach(async () => {
    user = await db().uow.transaction((tx) => insertUser(tx));
  });

  const claim = (key: string, hash: string, now = at(0), userId = user, ttlHours = 24) =>
    db().uow.transaction((tx) => keys.claim(tx, userId, key, hash, now, ttlHours));
  /** The stored keys, oldest first, read through TypeORM. */
  const storedKeys = () => db().uow.read((tx) => tx.find(IdempotencyKeyEntity, { order: { id: 'ASC' } }));

  /** A VM and an operation the key can point at (idempotency_keys has no FK to them, but the server always has both). */
  async function vmAndOperation() {
    return db().uow.transaction(async (tx) => {
      const vm = await insertVm(tx, vms, user);
      const op = operation({ vmId: vm.id, userId: user });
      await ops.insert(tx, op);
      return { vmId: vm.id, operationId: op.id };
    });
  }

  it('a new key is claimed once; the same request again is "seen"; the stored row expires after the TTL', async () => {
    const first = await claim('key-1', HASH_A, at(0), user, 24);
    expect(first.kind).toBe('new');
    const stored = await storedKeys();
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({
      id: (first as { id: string }).id,
      requestHash: HASH_A,
      vmId: null,
      operationId: null,
      expiresAt: at(24 * HOUR),
      createdAt: T0, // the test clock's time
    });

    const again = await claim('key-1', HASH_A, at(1000));
    expect(again).toEqual({ kind: 'seen', vmId: null, operationId: null, responseStatus: null, responseBody: null });
    expect(await storedKeys()).toHaveLength(1);
  });

  it('"seen" replays what attach() and recordResponse() stored; both move updated_at', async () => {
    const first = (await claim('key-1', HASH_A)) as Extract<KeyClaim, { kind: 'new' }>;
    const { vmId, operationId } = await vmAndOperation();
    db().clock.set(at(4));
    await db().uow.transaction((tx) => keys.attach(tx, first.id, vmId, operationId));
    expect(await claim('key-1', HASH_A)).toEqual({ kind: 'seen', vmId, operationId, responseStatus: null, responseBody: null });
    expect((await storedKeys())[0]).toMatchObject({ createdAt: T0, updatedAt: at(4) });

    const body = { id: vmId, status: 'created', labels: ['ü', 'x'] };
    db().clock.set(at(5));
    await db().uow.transaction((tx) => keys.recordResponse(tx, operationId, 201, body));
    const seen = await claim('key-1', HASH_A);
    expect(seen).toEqual({ kind: 'seen', vmId, operationId, responseStatus: 201, responseBody: JSON.stringify(body) });
    expect((await storedKeys())[0]).toMatchObject({ createdAt: T0, updatedAt: at(5) });
  });

  it('the same key with a different request body is refused with IdempotencyKeyReusedError, leaving the key as it was', async () => {
    await claim('key-1', HASH_A);
    const error = await errorOf(() => claim('key-1', HASH_B));
    expect(error).toBeInstanceOf(IdempotencyKeyReusedError);
    expect((await storedKeys()).map((r) => r.requestHash)).toEqual([HASH_A]);
  });

  it('keys are scoped per user', async () => {
    const other = await db().uow.transaction((tx) => insertUser(tx));
    expect((await claim('shared', HASH_A)).kind).toBe('new');
    expect((await claim('shared', HASH_B, at(0), other)).kind).toBe('new');
    expect((await claim('shared', HASH_B, at(1), other)).kind).toBe('seen');
    expect(await storedKeys()).toHaveLength(2);
  });

  it('an expired key is replaced by a new claim (even with another body); until it expires it still holds', async () => {
    const first = (await claim('key-1', HASH_A, at(0), user, 1)) as Extract<KeyClaim, { kind: 'new' }>;
    await expect(claim('key-1', HASH_B, at(HOUR - 1), user, 1)).rejects.toBeInstanceOf(IdempotencyKeyReusedError);

    const replaced = await claim('key-1', HASH_B, at(HOUR), user, 1);
    expect(replaced.kind).toBe('new');
    expect((replaced as { id: string }).id).not.toBe(first.id);
    const stored = await storedKeys();
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ id: (replaced as { id: string }).id, requestHash: HASH_B, expiresAt: at(2 * HOUR) });
    expect((await claim('key-1', HASH_B, at(HOUR + 1), user, 1)).kind).toBe('seen');
  });

  it('forget(operationId) drops only that operation’s key, so a retry runs afresh', async () => {
    const a = (await claim('key-a', HASH_A)) as Extract<KeyClaim, { kind: 'new' }>;
    const b = (await claim('key-b', HASH_A)) as Extract<KeyClaim, { kind: 'new' }>;
    const forA = await vmAndOperation();
    const forB = await vmAndOperation();
    await db().uow.transaction(async (tx) => {
      await keys.attach(tx, a.id, forA.vmId, forA.operationId);
      await keys.attach(tx, b.id, forB.vmId, forB.operationId);
    });

    await db().uow.transaction((tx) => keys.forget(tx, forA.operationId));
    expect((await storedKeys()).map((r) => r.id)).toEqual([b.id]);
    expect((await claim('key-a', HASH_B)).kind).toBe('new');
    expect((await claim('key-b', HASH_A)).kind).toBe('seen');
  });

  it('recordResponse() writes only the key of that operation', async () => {
    const a = (await claim('key-a', HASH_A)) as Extract<KeyClaim, { kind: 'new' }>;
    await claim('key-b', HASH_A);
    const forA = await vmAndOperation();
    await db().uow.transaction((tx) => keys.attach(tx, a.id, forA.vmId, forA.operationId));
    await db().uow.transaction((tx) => keys.recordResponse(tx, forA.operationId, 202, { ok: true }));
    expect(await claim('key-b', HASH_A)).toMatchObject({ kind: 'seen', responseStatus: null, responseBody: null });
    expect(await claim('key-a', HASH_A)).toMatchObject({ kind: 'seen', responseStatus: 202, responseBody: '{"ok":true}' });
  });

  it('purgeExpired() deletes exactly the keys that expired before now', async () => {
    await claim('short', HASH_A, at(0), user, 1);
    await claim('long', HASH_A, at(0), user, 48);
    expect(await db().uow.transaction((tx) => keys.purgeExpired(tx, at(HOUR)))).toBe(0); // expires_at == now is kept
    expect(await db().uow.transaction((tx) => keys.purgeExpired(tx, at(HOUR + 1)))).toBe(1);
    expect(await db().uow.read((tx) => scalar(tx, 'SELECT COUNT(*) AS n FROM idempotency_keys'))).toBe(1);
  });

  if (kind === 'postgres') {
    /** Starts a transaction that claims the key and then waits for `finish` before committing (or rolling back). */
    function holdClaim(key: string, hash: string, finish: Promise<'commit' | 'rollback'>) {
      const claimed = deferred<KeyClaim>();
      const done = db()
        .uow.transaction(async (tx) => {
          const result = await keys.claim(tx, user, key, hash, at(0), 24);
          claimed.resolve(result);
          if ((await finish) === 'rollback') throw new Error('rolled back on purpose');
          return result;
        })
        .catch((error: Error) => error);
      return { claimed: claimed.promise, done };
    }

    it('PostgreSQL only: a concurrent claim of the same key waits for the first transaction, then sees its key', async () => {
      const finish = deferred<'commit' | 'rollback'>();
      const first = holdClaim('race', HASH_A, finish.promise);
      expect((await first.claimed).kind).toBe('new');

      let settled = false;
      const second = claim('race', HASH_A).finally(() => (settled = true));
      await sleep(300);
      expect(settled).toBe(false); // blocked on the uncommitted row, not racing past it

      finish.resolve('commit');
      const firstResult = await first.done;
      expect(firstResult).toMatchObject({ kind: 'new' });
      expect(await second).toEqual({ kind: 'seen', vmId: null, operationId: null, responseStatus: null, responseBody: null });
      expect(await storedKeys()).toHaveLength(1);
    });

    it('PostgreSQL only: if the first transaction rolls back, the waiting claim becomes the new one', async () => {
      const finish = deferred<'commit' | 'rollback'>();
      const first = holdClaim('race', HASH_A, finish.promise);
      await first.claimed;
      const second = claim('race', HASH_A);
      await sleep(100);
      finish.resolve('rollback');
      expect(await first.done).toBeInstanceOf(Error);
      const result = await second;
      expect(result.kind).toBe('new');
      expect((await storedKeys()).map((r) => r.id)).toEqual([(result as { id: string }).id]);
    });

    it('PostgreSQL only: 10 parallel claims of one key produce exactly one "new" and nine "seen"', async () => {
      const results = await Promise.all(Array.from({ length: 10 }, () => claim('burst', HASH_A)));
      expect(results.filter((r) => r.kind === 'new')).toHaveLength(1);
      expect(results.filter((r) => r.kind === 'seen')).toHaveLength(9);
      expect(await storedKeys()).toHaveLength(1);
    });

    // Regression: claim() used to return 'new' for both when they raced on an expired key.
    it('PostgreSQL only: two concurrent claims of an expired key do not both get "new"', async () => {
      await claim('stale', HASH_A, at(0), user, 1);
      const later = at(2 * HOUR);
      // Let both claimers read the expired row before either deletes it.
      let atDelete = 0;
      const bothRead = deferred();
      const pausingRepository = <E extends ObjectLiteral>(repository: Repository<E>): Repository<E> =>
        new Proxy(repository, {
          get: (target, prop, receiver) =>
            prop === 'delete'
              ? async (...args: Parameters<Repository<E>['delete']>) => {
                  if (++atDelete === 2) bothRead.resolve();
                  await bothRead.promise;
                  return target.delete(...args);
                }
              : Reflect.get(target, prop, receiver),
        });
      // The transaction's manager, except that the repositories it hands out wait at delete().
      const pausing = (tx: Tx): Tx =>
        new Proxy(tx, {
          get: (target, prop) => {
            if (prop === 'getRepository') return (entity: Parameters<Tx['getRepository']>[0]) => pausingRepository(target.getRepository(entity));
            const value = Reflect.get(target, prop, target);
            return typeof value === 'function' ? value.bind(target) : value;
          },
        });
      const results = await Promise.all(
        [0, 1].map(() => db().uow.transaction((tx) => keys.claim(pausing(tx), user, 'stale', HASH_A, later, 1))),
      );
      expect(atDelete).toBe(2); // both claimers reached the delete of the expired row
      const stored = await storedKeys();
      expect(stored).toHaveLength(1);
      expect(results.map((r) => r.kind).sort()).toEqual(['new', 'seen']);
      // Every 'new' id is the id of a stored key (attach() must find it).
      for (const r of results) if (r.kind === 'new') expect(r.id).toBe(stored[0].id);
    });
  }
});

reportSkippedPostgres('IdempotencyRepository');
