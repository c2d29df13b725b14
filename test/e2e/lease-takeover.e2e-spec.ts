import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { bearer, eventually, login } from '../support/api';
import { createTestDatabase, describePostgres } from '../support/postgres';
import { ServerHandle, startServer } from '../support/server-process';

describePostgres('a replica dies mid-operation; another takes its work over when the lease lapses (PostgreSQL)', () => {
  let a: ServerHandle;
  let b: ServerHandle;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    const db = await createTestDatabase();
    drop = db.drop;
    const dir = mkdtempSync(join(tmpdir(), 'vmplane-lease-'));
    const env = {
      SDK_STATE_PATH: join(dir, 'hypervisor.sqlite'),
      SDK_LATENCY_MS: '1500',
      OPERATION_LEASE_MS: '2000',
      OPERATION_POLL_MS: '200',
    };
    a = await startServer({ databaseUrl: db.url, env });
    b = await startServer({ databaseUrl: db.url, env });
  });

  afterAll(async () => {
    await a?.kill();
    await b?.stop();
    await drop?.();
  });

  it('finishes every create the dead replica accepted, once each', async () => {
    const token = await login(a.url);
    const accepted = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        request(a.url).post('/vms').set(bearer(token)).set('Prefer', 'respond-async').send({ name: `lease-${i}`, cpu_cores: 1, memory: 512, disk_size: 5 }),
      ),
    );
    for (const r of accepted) expect(r.status).toBe(202);
    // Replica A dies while its hypervisor calls are still in flight (each takes 1.5 s).
    await a.kill();

    const tokenB = await login(b.url);
    const ids = accepted.map((r) => r.body.id as string);
    await eventually(
      async () => {
        const statuses = await Promise.all(ids.map(async (id) => (await request(b.url).get(`/vms/${id}`).set(bearer(tokenB))).body.status));
        return statuses.every((s) => s === 'created');
      },
      30_000,
      250,
    );
    for (const r of accepted) {
      const op = await request(b.url).get(r.headers.location).set(bearer(tokenB));
      expect(op.body).toMatchObject({ status: 'succeeded' });
      expect(op.body.attempts).toBeGreaterThanOrEqual(2);
    }
    // Exactly one hypervisor VM per platform VM: B adopted nothing twice and created nothing twice.
    const hv = new Database(a.hypervisorStatePath, { readonly: true });
    const labels = (hv.prepare('SELECT labels FROM vms').all() as { labels: string }[]).map((r) => JSON.parse(r.labels) as string[]);
    hv.close();
    for (const id of ids) expect(labels.filter((l) => l.includes(`vmplane.vm-id=${id}`))).toHaveLength(1);
  });
});
