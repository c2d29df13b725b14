import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { bearer, login } from '../support/api';
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
