import { UuidV7Generator } from '../../src/common/id-generator';
import { IdempotencyKeyReusedError } from '../../src/common/domain-errors';
import { IdempotencyRepository, KeyClaim } from '../../src/idempotency/idempotency.repository';
import type { Tx } from '../../src/database/unit-of-work';
import { OperationsRepository } from '../../src/operations/operations.repository';
import { DB_KINDS, deferred, errorOf, reportSkippedPostgres, scalar, sleep, useTestDatabase } from './support/database';
import { at, insertUser, insertVm, operation } from './support/fixtures';

const HOUR = 3_600_000;
const HASH_A = 'a'.repeat(64);
const HASH_B = 'b'.repeat(64);

interface KeyRow {
  id: string;
  request_hash: string;
  vm_id: string | null;
  operation_id: string | null;
  expires_at: unknown;
}

describe.each(DB_KINDS)('IdempotencyRepository on %s', (kind) => {
  const db = useTestDatabase(kind);
  const keys = new IdempotencyRepository(new UuidV7Generator());

  let user: string;
  beforeEach(async () => {
    user = await db().uow.transaction((tx) => insertUser(tx));
  });

  const claim = (key: string, hash: string, now = at(0), userId = user, ttlHours = 24) =>
    db().uow.transaction((tx) => keys.claim(tx, userId, key, hash, now, ttlHours));
  const rows = () =>
    db().uow.read((tx) => tx.rows<KeyRow>('SELECT id, request_hash, vm_id, operation_id, expires_at FROM idempotency_keys ORDER BY id'));

  /** A VM and an operation the key can point at (idempotency_keys has no FK to them, but the server always has both). */
  async function vmAndOperation() {
    return db().uow.transaction(async (tx) => {
      const vm = await insertVm(tx, user);
      const op = operation({ vmId: vm.id, userId: user });
      await new OperationsRepository().insert(tx, op);
      return { vmId: vm.id, operationId: op.id };
    });
  }

  it('a new key is claimed once; the same request again is "seen"; the stored row expires after the TTL', async () => {
    const first = await claim('key-1', HASH_A, at(0), user, 24);
    expect(first.kind).toBe('new');
    const stored = await rows();
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ id: (first as { id: string }).id, request_hash: HASH_A, vm_id: null, operation_id: null });
    expect(db().dialect.date(stored[0].expires_at)).toEqual(at(24 * HOUR));

    const again = await claim('key-1', HASH_A, at(1000));
    expect(again).toEqual({ kind: 'seen', vmId: null, operationId: null, responseStatus: null, responseBody: null });
    expect(await rows()).toHaveLength(1);
  });

  it('"seen" replays what attach() and recordResponse() stored', async () => {
    const first = (await claim('key-1', HASH_A)) as Extract<KeyClaim, { kind: 'new' }>;
    const { vmId, operationId } = await vmAndOperation();
    await db().uow.transaction((tx) => keys.attach(tx, first.id, vmId, operationId));
    expect(await claim('key-1', HASH_A)).toEqual({ kind: 'seen', vmId, operationId, responseStatus: null, responseBody: null });

    const body = { id: vmId, status: 'created', labels: ['ü', 'x'] };
    await db().uow.transaction((tx) => keys.recordResponse(tx, operationId, 201, body, at(5)));
    const seen = await claim('key-1', HASH_A);
    expect(seen).toEqual({ kind: 'seen', vmId, operationId, responseStatus: 201, responseBody: JSON.stringify(body) });
  });

  it('the same key with a different request body is refused with IdempotencyKeyReusedError, leaving the key as it was', async () => {
    await claim('key-1', HASH_A);
    const error = await errorOf(() => claim('key-1', HASH_B));
    expect(error).toBeInstanceOf(IdempotencyKeyReusedError);
    expect((await rows()).map((r) => r.request_hash)).toEqual([HASH_A]);
  });

  it('keys are scoped per user', async () => {
    const other = await db().uow.transaction((tx) => insertUser(tx));
    expect((await claim('shared', HASH_A)).kind).toBe('new');
    expect((await claim('shared', HASH_B, at(0), other)).kind).toBe('new');
    expect((await claim('shared', HASH_B, at(1), other)).kind).toBe('seen');
    expect(await rows()).toHaveLength(2);
  });

  it('an expired key is replaced by a new claim (even with another body); until it expires it still holds', async () => {
    const first = (await claim('key-1', HASH_A, at(0), user, 1)) as Extract<KeyClaim, { kind: 'new' }>;
    await expect(claim('key-1', HASH_B, at(HOUR - 1), user, 1)).rejects.toBeInstanceOf(IdempotencyKeyReusedError);

    const replaced = await claim('key-1', HASH_B, at(HOUR), user, 1);
    expect(replaced.kind).toBe('new');
    expect((replaced as { id: string }).id).not.toBe(first.id);
    const stored = await rows();
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ id: (replaced as { id: string }).id, request_hash: HASH_B });
    expect(db().dialect.date(stored[0].expires_at)).toEqual(at(2 * HOUR));
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
    expect((await rows()).map((r) => r.id)).toEqual([b.id]);
    expect((await claim('key-a', HASH_B)).kind).toBe('new');
    expect((await claim('key-b', HASH_A)).kind).toBe('seen');
  });

  it('recordResponse() writes only the key of that operation', async () => {
    const a = (await claim('key-a', HASH_A)) as Extract<KeyClaim, { kind: 'new' }>;
    await claim('key-b', HASH_A);
    const forA = await vmAndOperation();
    await db().uow.transaction((tx) => keys.attach(tx, a.id, forA.vmId, forA.operationId));
    await db().uow.transaction((tx) => keys.recordResponse(tx, forA.operationId, 202, { ok: true }, at(9)));
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
      expect(await rows()).toHaveLength(1);
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
      expect((await rows()).map((r) => r.id)).toEqual([(result as { id: string }).id]);
    });

    it('PostgreSQL only: 10 parallel claims of one key produce exactly one "new" and nine "seen"', async () => {
      const results = await Promise.all(Array.from({ length: 10 }, () => claim('burst', HASH_A)));
      expect(results.filter((r) => r.kind === 'new')).toHaveLength(1);
      expect(results.filter((r) => r.kind === 'seen')).toHaveLength(9);
      expect(await rows()).toHaveLength(1);
    });

    // Regression: claim() used to return 'new' for both when they raced on an expired key.
    it('PostgreSQL only: two concurrent claims of an expired key do not both get "new"', async () => {
      await claim('stale', HASH_A, at(0), user, 1);
      const later = at(2 * HOUR);
      // Let both claimers read the expired row before either deletes it.
      let atDelete = 0;
      const bothRead = deferred();
      const pausing = (tx: Tx): Tx => ({
        dialect: tx.dialect,
        manager: tx.manager,
        rows: (sql, params) => tx.rows(sql, params),
        one: (sql, params) => tx.one(sql, params),
        run: async (sql, params) => {
          if (sql.startsWith('DELETE FROM idempotency_keys')) {
            if (++atDelete === 2) bothRead.resolve();
            await bothRead.promise;
          }
          return tx.run(sql, params);
        },
      });
      const results = await Promise.all(
        [0, 1].map(() => db().uow.transaction((tx) => keys.claim(pausing(tx), user, 'stale', HASH_A, later, 1))),
      );
      const stored = await rows();
      expect(stored).toHaveLength(1);
      expect(results.map((r) => r.kind).sort()).toEqual(['new', 'seen']);
      // Every 'new' id is the id of a stored key (attach() must find it).
      for (const r of results) if (r.kind === 'new') expect(r.id).toBe(stored[0].id);
    });
  }
});

reportSkippedPostgres('IdempotencyRepository');
