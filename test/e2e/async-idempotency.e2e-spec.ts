import Database from 'better-sqlite3';
import request from 'supertest';
import { ORIGINAL_VM, bearer, eventually, login } from '../support/api';
import { ServerHandle, startServer } from '../support/server-process';

function hypervisorVmCount(path: string, vmId?: string): number {
  const db = new Database(path, { readonly: true });
  try {
    const rows = db.prepare('SELECT labels FROM vms').all() as { labels: string }[];
    return vmId ? rows.filter((r) => (JSON.parse(r.labels) as string[]).includes(`vmplane.vm-id=${vmId}`)).length : rows.length;
  } finally {
    db.close();
  }
}

describe('asynchronous operations and idempotent retries (SDK_LATENCY_MS=300)', () => {
  let server: ServerHandle;
  let token: string;
  let counter = 0;
  const vm = () => ({ ...ORIGINAL_VM, name: `async-${++counter}`, public_ip: null });

  beforeAll(async () => {
    server = await startServer({ env: { SDK_LATENCY_MS: '300' } });
    token = await login(server.url);
  });
  afterAll(() => server?.stop());

  it('answers 202 at once with Prefer: respond-async, pointing at the operation', async () => {
    const started = Date.now();
    const accepted = await request(server.url).post('/vms').set(bearer(token)).set('Prefer', 'respond-async').send(vm());
    expect(Date.now() - started).toBeLessThan(250);
    expect(accepted.status).toBe(202);
    expect(accepted.headers['preference-applied']).toBe('respond-async');
    expect(accepted.body.status).toBe('provisioning');
    expect(accepted.headers.location).toMatch(/^\/operations\/[0-9a-f-]{36}$/);

    const running = await request(server.url).get(accepted.headers.location).set(bearer(token));
    expect(running.body).toMatchObject({ action: 'create', vm_id: accepted.body.id, status: 'running', stage: 'calling_hypervisor' });
    const done = await eventually(async () => {
      const op = await request(server.url).get(accepted.headers.location).set(bearer(token));
      return op.body.status === 'succeeded' ? op.body : null;
    });
    expect(done.finished_at).not.toBeNull();
    expect((await request(server.url).get(`/vms/${accepted.body.id}`).set(bearer(token))).body.status).toBe('created');

    const deleting = await request(server.url).delete(`/vms/${accepted.body.id}`).set(bearer(token)).set('Prefer', 'respond-async');
    expect(deleting.status).toBe(202);
    expect(deleting.body.status).toBe('deleting');
    // A second DELETE while the first runs follows the same operation.
    const again = await request(server.url).delete(`/vms/${accepted.body.id}`).set(bearer(token)).set('Prefer', 'respond-async');
    expect(again.status).toBe(202);
    expect(again.headers.location).toBe(deleting.headers.location);
    await eventually(async () => (await request(server.url).get(`/vms/${accepted.body.id}`).set(bearer(token))).body.status === 'deleted');
  });

  it('waits for the outcome without Prefer, and answers 202 when Prefer: wait=N runs out first', async () => {
    const waited = await request(server.url).post('/vms').set(bearer(token)).send(vm());
    expect(waited.status).toBe(201);
    expect(waited.body.status).toBe('created');

    const slow = await startServer({ env: { SDK_LATENCY_MS: '2500' } });
    try {
      const slowToken = await login(slow.url);
      const started = Date.now();
      const timedOut = await request(slow.url).post('/vms').set(bearer(slowToken)).set('Prefer', 'wait=1').send(vm());
      expect(Date.now() - started).toBeLessThan(2300);
      expect(timedOut.status).toBe(202);
      expect(timedOut.headers['preference-applied']).toBeUndefined();
      expect(timedOut.headers.location).toMatch(/^\/operations\//);
      expect(timedOut.body.status).toBe('provisioning');
    } finally {
      await slow.stop();
    }
  });

  it('returns the original response for concurrent duplicates with one Idempotency-Key: one VM, one hypervisor call', async () => {
    const body = vm();
    const send = () => request(server.url).post('/vms').set(bearer(token)).set('Idempotency-Key', 'key-concurrent-1').send(body);
    const responses = await Promise.all(Array.from({ length: 8 }, send));
    for (const r of responses) expect([201, 202]).toContain(r.status);
    const ids = new Set(responses.map((r) => r.body.id));
    expect(ids.size).toBe(1);
    const [vmId] = ids;
    await eventually(async () => (await request(server.url).get(`/vms/${vmId}`).set(bearer(token))).body.status === 'created');
    expect(hypervisorVmCount(server.hypervisorStatePath, vmId as string)).toBe(1);
    const ops = await request(server.url).get(`/vms/${vmId}/operations`).set(bearer(token));
    expect(ops.body.items).toHaveLength(1);

    const replay = await send();
    expect(replay.status).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body.id).toBe(vmId);
    // Same body in a different property order is the same request.
    const reordered = await request(server.url)
      .post('/vms')
      .set(bearer(token))
      .set('Idempotency-Key', 'key-concurrent-1')
      .send(Object.fromEntries(Object.entries(body).reverse()));
    expect(reordered.status).toBe(201);
    expect(reordered.body.id).toBe(vmId);
  });

  it('refuses the same key with a different body (422), scopes keys per user, and validates the key', async () => {
    const first = await request(server.url).post('/vms').set(bearer(token)).set('Idempotency-Key', 'key-2').send(vm());
    expect(first.status).toBe(201);
    const changed = await request(server.url).post('/vms').set(bearer(token)).set('Idempotency-Key', 'key-2').send({ ...vm(), cpu_cores: 4 });
    expect(changed.status).toBe(422);
    expect(changed.body.code).toBe('idempotency_key_reused');

    const admin = await login(server.url, 'admin', 'adminpassword');
    const other = await request(server.url).post('/vms').set(bearer(admin)).set('Idempotency-Key', 'key-2').send(vm());
    expect(other.status).toBe(201);
    expect(other.body.id).not.toBe(first.body.id);

    const bad = await request(server.url).post('/vms').set(bearer(token)).set('Idempotency-Key', 'has spaces').send(vm());
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].field).toBe('Idempotency-Key');
  });

  it('answers a duplicate that arrives while the first still runs with the in-flight 202', async () => {
    const body = vm();
    const first = await request(server.url).post('/vms').set(bearer(token)).set('Idempotency-Key', 'key-3').set('Prefer', 'respond-async').send(body);
    expect(first.status).toBe(202);
    const dup = await request(server.url).post('/vms').set(bearer(token)).set('Idempotency-Key', 'key-3').set('Prefer', 'respond-async').send(body);
    expect(dup.status).toBe(202);
    expect(dup.body.id).toBe(first.body.id);
    expect(dup.headers.location).toBe(first.headers.location);
  });

  it('keeps an idempotency key for at least 24 hours', async () => {
    const first = await request(server.url).post('/vms').set(bearer(token)).set('Idempotency-Key', 'key-ttl').send(vm());
    expect(first.status).toBe(201);
    const [row] = await server.query<{ created_at: string | Date; expires_at: string | Date }>(
      "SELECT created_at, expires_at FROM idempotency_keys WHERE key = 'key-ttl'",
    );
    const time = (v: string | Date) => (v instanceof Date ? v.getTime() : Date.parse(`${v.replace(' ', 'T')}Z`));
    expect(time(row.expires_at) - time(row.created_at)).toBeGreaterThanOrEqual(24 * 3600 * 1000);
  });
});
