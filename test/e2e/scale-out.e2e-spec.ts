import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { bearer, createUser, login } from '../support/api';
import { writeFleetFile } from '../support/fleet';
import { createTestDatabase, describePostgres } from '../support/postgres';
import { ServerHandle, startServer } from '../support/server-process';

describePostgres('two server processes sharing PostgreSQL and one simulated hypervisor', () => {
  const servers: ServerHandle[] = [];
  let drop: () => Promise<void>;
  let statePath: string;

  beforeAll(async () => {
    const db = await createTestDatabase();
    drop = db.drop;
    const dir = mkdtempSync(join(tmpdir(), 'vmplane-scale-'));
    statePath = join(dir, 'hypervisor.sqlite');
    const fleetFile = writeFleetFile(
      dir,
      ['a', 'b', 'c', 'd'].map((n) => ({ name: `scale-${n}`, gpus: 8 })),
    );
    const env = { FLEET_FILE: fleetFile, SDK_STATE_PATH: statePath, QUOTA_GPUS: '1000', QUOTA_VMS: '1000', QUOTA_VCPUS: '100000', SDK_LATENCY_MS: '20' };
    // One after the other, so the second finds the migrations, users and fleet in place.
    servers.push(await startServer({ databaseUrl: db.url, env }));
    servers.push(await startServer({ databaseUrl: db.url, env }));
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await drop?.();
  });

  it('places exactly 32 of 200 concurrent 1-GPU creates, on distinct GPUs, and refuses the rest with 503', async () => {
    const tokens = await Promise.all(servers.map((s) => login(s.url)));
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) => {
        const s = i % 2;
        return request(servers[s].url)
          .post('/vms')
          .set(bearer(tokens[s]))
          .send({ name: `burst-${i}`, cpu_cores: 1, memory: 1024, disk_size: 10, gpu_count: 1 });
      }),
    );
    const created = responses.filter((r) => r.status === 201);
    const refused = responses.filter((r) => r.status === 503);
    expect(created).toHaveLength(32);
    expect(refused).toHaveLength(168);
    for (const r of refused) expect(r.body.code).toBe('insufficient_capacity');
    // Both replicas did real work.
    expect(new Set(created.map((r) => r.request.url.split('/vms')[0])).size).toBe(2);

    const gpuIds = created.map((r) => r.body.gpus[0].id as string);
    expect(new Set(gpuIds).size).toBe(32);

    const hv = new Database(statePath, { readonly: true });
    const rows = hv.prepare('SELECT gpus, labels FROM vms').all() as { gpus: string; labels: string }[];
    hv.close();
    expect(rows).toHaveLength(32);
    const attached = rows.flatMap((r) => JSON.parse(r.gpus) as string[]);
    expect(new Set(attached).size).toBe(32);
    const labelled = rows.map((r) => (JSON.parse(r.labels) as string[]).find((l) => l.startsWith('vmplane.vm-id='))!.slice('vmplane.vm-id='.length));
    expect(labelled.sort()).toEqual(created.map((r) => r.body.id).sort());

    const capacity = await request(servers[1].url).get('/capacity').set(bearer(tokens[1]));
    expect(capacity.body.items).toEqual([expect.objectContaining({ total: 32, allocated: 32, free: 0, largest_placeable: 0 })]);
  });

  it('a role taken away or a user disabled on one replica counts on the other at once', async () => {
    const [a, b] = servers.map((s) => s.url);
    const admin = await login(a, 'admin', 'adminpassword');
    const users = (await request(a).get('/users?limit=200').set(bearer(admin))).body.items as { id: string; username: string }[];
    await createUser(a, admin, 'deputy', 'admin');
    await createUser(a, admin, 'carol');
    const idOf = async (username: string) => ((await request(a).get('/users?limit=200').set(bearer(admin))).body.items as typeof users).find((u) => u.username === username)!.id;
    const [deputyId, carolId] = [await idOf('deputy'), await idOf('carol')];

    // The deputy's token works as an admin's on B (and B has cached it), then A demotes them: B refuses an admin request at once.
    const deputy = await login(b, 'deputy', 'deputy-password');
    expect((await request(b).get('/users?limit=1').set(bearer(deputy))).status).toBe(200);
    expect((await request(a).patch(`/users/${deputyId}`).set(bearer(admin)).send({ role: 'member' })).status).toBe(200);
    const escalation = await request(b).post('/users').set(bearer(deputy)).send({ username: 'sneaky', password: 'sneaky-password', role: 'admin' });
    expect(escalation.status).toBe(403);

    // Carol's token works on B (cached there for up to a second), then A disables her: B refuses it as soon as the announcement arrives.
    const carol = await login(b, 'carol', 'carol-password');
    expect((await request(b).get('/vms').set(bearer(carol))).status).toBe(200);
    expect((await request(a).patch(`/users/${carolId}`).set(bearer(admin)).send({ disabled: true })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await request(b).get('/vms').set(bearer(carol))).status).toBe(401);
  });

  it('lets either replica serve and delete what the other created', async () => {
    const [a, b] = await Promise.all(servers.map((s) => login(s.url)));
    const list = await request(servers[0].url).get('/vms?limit=5').set(bearer(a));
    const vm = list.body.items[0];
    expect((await request(servers[1].url).get(`/vms/${vm.id}`).set(bearer(b))).body.id).toBe(vm.id);
    const deleted = await request(servers[1].url).delete(`/vms/${vm.id}`).set(bearer(b));
    expect(deleted.status).toBe(200);
    expect(deleted.body.status).toBe('deleted');
  });
});

describePostgres('two server processes: one VM, twenty concurrent starts and stops', () => {
  const servers: ServerHandle[] = [];
  let drop: () => Promise<void>;

  beforeAll(async () => {
    const db = await createTestDatabase();
    drop = db.drop;
    const dir = mkdtempSync(join(tmpdir(), 'vmplane-scale-power-'));
    const env = { SDK_STATE_PATH: join(dir, 'hypervisor.sqlite'), SDK_LATENCY_MS: '30' };
    servers.push(await startServer({ databaseUrl: db.url, env }));
    servers.push(await startServer({ databaseUrl: db.url, env }));
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await drop?.();
  });

  it('ends in one consistent state, with exactly one operation running at a time', async () => {
    const tokens = await Promise.all(servers.map((s) => login(s.url)));
    const vm = (await request(servers[0].url).post('/vms').set(bearer(tokens[0])).send({ name: 'flip', cpu_cores: 1, memory: 512, disk_size: 5 })).body;
    expect(vm.status).toBe('created');
    const statuses = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        request(servers[i % 2].url)
          .post(`/vms/${vm.id}/${i % 4 < 2 ? 'stop' : 'start'}`)
          .set(bearer(tokens[i % 2]))
          .set('Prefer', 'wait=20')
          .then((r) => `${r.status} ${r.body.code ?? ''}`.trim()),
      ),
    );
    for (const status of statuses) expect(['200', '409 invalid_state', '409 operation_in_progress']).toContain(status);
    expect(statuses.filter((s) => s === '200').length).toBeGreaterThan(0);

    const ops = (await request(servers[0].url).get(`/vms/${vm.id}/operations?limit=200`).set(bearer(tokens[0]))).body.items as {
      action: string;
      status: string;
      started_at: string | null;
      finished_at: string | null;
    }[];
    const actions = ops.filter((o) => o.action !== 'create');
    expect(actions.every((o) => o.status === 'succeeded')).toBe(true);
    // No two operations of the VM ran at the same time.
    const spans = actions.map((o) => [Date.parse(o.started_at!), Date.parse(o.finished_at!)] as const).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i][0]).toBeGreaterThanOrEqual(spans[i - 1][1]);
    // The record and the hypervisor agree on the power state.
    const after = (await request(servers[1].url).get(`/vms/${vm.id}`).set(bearer(tokens[1]))).body;
    const admin = await login(servers[0].url, 'admin', 'adminpassword');
    const report = (await request(servers[0].url).post('/admin/reconciliation').set(bearer(admin))).body;
    expect(report).toMatchObject({ missing_vms_failed: 0, orphans_found: 0 });
    expect(['running', 'shut_off']).toContain(after.power_state);
    const last = actions.sort((a, b) => Date.parse(b.finished_at!) - Date.parse(a.finished_at!))[0];
    expect(after.power_state).toBe(last.action === 'stop' ? 'shut_off' : 'running');
  });
});
