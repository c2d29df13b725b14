import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { bearer, createUser, login } from '../support/api';
import { writeFleetFile } from '../support/fleet';
import { ServerHandle, startServer } from '../support/server-process';

const H200_XML = readFileSync(join(__dirname, '..', 'fixtures', 'nvidia-smi', 'h200-passthrough.xml'), 'utf8');

interface CapacityRow {
  gpu_model: string;
  region: string;
  total: number;
  allocated: number;
  free: number;
  unavailable: number;
  largest_placeable: number;
}

function hypervisorRows(path: string): { id: string; gpus: string[]; labels: string[] }[] {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare('SELECT id, gpus, labels FROM vms').all() as { id: string; gpus: string; labels: string }[]).map((r) => ({
      id: r.id,
      gpus: JSON.parse(r.gpus),
      labels: JSON.parse(r.labels),
    }));
  } finally {
    db.close();
  }
}

describe('GPUs on the demo fleet', () => {
  let server: ServerHandle;
  let admin: string;
  let user: string;
  const capacity = async (token = user): Promise<CapacityRow[]> => (await request(server.url).get('/capacity').set(bearer(token))).body.items;
  const h100 = async (region = 'us-east-1') => (await capacity()).find((r) => r.gpu_model === 'h100-80gb' && r.region === region)!;

  beforeAll(async () => {
    server = await startServer();
    admin = await login(server.url, 'admin', 'adminpassword');
    user = await login(server.url);
  });
  afterAll(() => server?.stop());

  it('loads the documented demo fleet: 2×8 H100, 2×8 A100, 2×4 L40S, 2×2 L4, 2 H200 in MIG mode, 2 CPU-only hosts', async () => {
    const hosts = (await request(server.url).get('/hosts').set(bearer(admin))).body.items as { name: string; gpus: { model: string; sharing_mode: string }[] }[];
    expect(hosts).toHaveLength(11);
    const byModel = new Map<string, number>();
    for (const host of hosts) for (const gpu of host.gpus) byModel.set(`${gpu.model} ${gpu.sharing_mode}`, (byModel.get(`${gpu.model} ${gpu.sharing_mode}`) ?? 0) + 1);
    expect(Object.fromEntries(byModel)).toEqual({
      'h100-80gb passthrough': 16,
      'a100-80gb passthrough': 16,
      'l40s-48gb passthrough': 8,
      'l4-24gb passthrough': 4,
      'h200-141gb mig': 2,
    });
    expect(hosts.filter((h) => h.gpus.length === 0)).toHaveLength(2);
  });

  it('answers "where can I get 8 H100s now?" from /capacity for any signed-in user', async () => {
    expect((await request(server.url).get('/capacity')).status).toBe(401);
    const rows = await capacity();
    expect(rows).toContainEqual({ gpu_model: 'h100-80gb', region: 'us-east-1', total: 8, allocated: 0, free: 8, unavailable: 0, largest_placeable: 8, profiles: [] });
    expect(rows).toContainEqual(expect.objectContaining({ gpu_model: 'l4-24gb', largest_placeable: 2 }));
  });

  it('creates a VM with 8 H100s, capacity drops, a second is refused with alternatives, delete brings capacity back', async () => {
    const create = (body: Record<string, unknown>) => request(server.url).post('/vms').set(bearer(user)).send(body);
    const spec = { name: 'trainer', cpu_cores: 32, memory: 262_144, disk_size: 500, gpu_count: 8, gpu_model: 'h100-80gb', region: 'us-east-1' };
    const created = await create(spec);
    expect(created.status).toBe(201);
    // Members see the region; the host's name is for admins, as /hosts is.
    expect(created.body).toMatchObject({ gpu_count: 8, gpu_model: 'h100-80gb', host: null, region: 'us-east-1' });
    expect((await request(server.url).get(`/vms/${created.body.id}`).set(bearer(admin))).body.host).toBe('h100-01');
    expect(created.body.gpus).toHaveLength(8);
    expect(new Set(created.body.gpus.map((g: { id: string }) => g.id)).size).toBe(8);
    expect(created.body.gpus[0]).toEqual({
      id: expect.any(String),
      model: 'h100-80gb',
      memory_mib: 81559,
      pci_address: '00000000:18:00.0',
      uuid: expect.stringMatching(/^GPU-/),
      index: 0,
      slots: null,
    });
    expect(created.body.gpu_profile).toBeNull();
    expect(await h100()).toMatchObject({ allocated: 8, free: 0, largest_placeable: 0 });

    const refused = await create({ ...spec, name: 'trainer-2' });
    expect(refused.status).toBe(503);
    expect(refused.body.code).toBe('insufficient_capacity');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.body.alternatives).toEqual(
      expect.arrayContaining([
        { gpu_model: 'a100-80gb', gpu_count: 8, region: 'us-east-1' },
      ]),
    );
    const refusedVm = await request(server.url).get(`/vms/${refused.body.vm_id}`).set(bearer(user));
    expect(refusedVm.body).toMatchObject({ status: 'failed', status_reason: expect.stringContaining('insufficient capacity') });
    const refusedOps = await request(server.url).get(`/vms/${refused.body.vm_id}/operations`).set(bearer(user));
    expect(refusedOps.body.items[0]).toMatchObject({ status: 'failed', error: { code: 'insufficient_capacity' } });

    // The host view shows what each GPU is bound to.
    const hosts = (await request(server.url).get('/hosts').set(bearer(admin))).body.items as { name: string; gpus: { vm_id: string | null }[] }[];
    expect(hosts.find((h) => h.name === 'h100-01')!.gpus.every((g) => g.vm_id === created.body.id)).toBe(true);

    // The simulator saw exactly these devices attached.
    const onHypervisor = hypervisorRows(server.hypervisorStatePath).find((vm) => vm.labels.includes(`vmplane.vm-id=${created.body.id}`));
    expect(onHypervisor?.gpus).toHaveLength(8);

    expect((await request(server.url).delete(`/vms/${created.body.id}`).set(bearer(user))).status).toBe(200);
    expect(await h100()).toMatchObject({ allocated: 0, free: 8, largest_placeable: 8 });
    // The deleted VM still says which GPUs it had.
    const after = await request(server.url).get(`/vms/${created.body.id}`).set(bearer(user));
    expect(after.body.gpus).toHaveLength(8);
  });

  it('takes any model when gpu_model is absent, and never mixes models in one VM', async () => {
    const response = await request(server.url).post('/vms').set(bearer(user)).send({ name: 'any', cpu_cores: 4, memory: 8192, disk_size: 20, gpu_count: 2 });
    expect(response.status).toBe(201);
    expect(new Set(response.body.gpus.map((g: { model: string }) => g.model)).size).toBe(1);
    expect(response.body.gpu_model).toBe(response.body.gpus[0].model);
    await request(server.url).delete(`/vms/${response.body.id}`).set(bearer(user)).expect(200);
  });

  it.each([
    ['H100', 'h100-80gb'],
    ['NVIDIA A100-SXM4-80GB', 'a100-80gb'],
    ['L40S 48GB', 'l40s-48gb'],
  ])('reads gpu_model %j as the fleet\'s %s, and answers with the id', async (written, id) => {
    const response = await request(server.url).post('/vms').set(bearer(user)).send({ name: 'named', cpu_cores: 2, memory: 4096, disk_size: 10, gpu_count: 1, gpu_model: written });
    expect(response.status).toBe(201);
    expect(response.body.gpu_model).toBe(id);
    expect(response.body.gpus.map((g: { model: string }) => g.model)).toEqual([id]);
    await request(server.url).delete(`/vms/${response.body.id}`).set(bearer(user)).expect(200);
  });

  it.each([
    [{ gpu_count: 1, gpu_model: 'RTX 4090' }, 'gpu_model', /no host has GPU model RTX 4090/, { gpu_models: ['a100-80gb', 'h100-80gb', 'h200-141gb', 'l4-24gb', 'l40s-48gb'] }],
    [{ gpu_count: 1, gpu_model: 'H100 40GB' }, 'gpu_model', /no host has GPU model H100 40GB/, { gpu_models: ['a100-80gb', 'h100-80gb', 'h200-141gb', 'l4-24gb', 'l40s-48gb'] }],
    [{ gpu_count: 1, gpu_model: 'b200-192gb' }, 'gpu_model', /no host has GPU model b200-192gb/, { gpu_models: ['a100-80gb', 'h100-80gb', 'h200-141gb', 'l4-24gb', 'l40s-48gb'] }],
    [{ region: 'mars-1' }, 'region', /unknown region mars-1/, { regions: ['us-east-1', 'us-west-2'] }],
    [{ cpu_cores: 256, memory: 4_194_304 }, 'memory', /larger than any host/, { largest_host: expect.objectContaining({ memory: 2_097_152 }) }],
    [{ gpu_count: 4, gpu_model: 'l4-24gb' }, 'gpu_count', /the most on one host is 2/, { max_gpu_count: 2 }],
  ])('answers a request no host could ever hold (%j) with 422 unsatisfiable naming %s, and records nothing', async (overrides, field, reason, available) => {
    const failedBefore = (await request(server.url).get('/vms?status=failed&limit=200').set(bearer(user))).body.items.length;
    const response = await request(server.url).post('/vms').set(bearer(user)).send({ name: 'never', cpu_cores: 2, memory: 4096, disk_size: 10, ...overrides });
    expect(response.status).toBe(422);
    expect(response.headers['retry-after']).toBeUndefined();
    expect(response.body).toMatchObject({ code: 'unsatisfiable', field, reason: expect.stringMatching(reason), available });
    expect((await request(server.url).get('/vms?status=failed&limit=200').set(bearer(user))).body.items).toHaveLength(failedBefore);
  });

  it('places CPU-only VMs on CPU-only hosts first, accounting CPU, memory and disk there', async () => {
    const response = await request(server.url).post('/vms').set(bearer(user)).send({ name: 'cpu', cpu_cores: 16, memory: 65_536, disk_size: 100 });
    const placedOn = (await request(server.url).get(`/vms/${response.body.id}`).set(bearer(admin))).body.host as string;
    expect(placedOn).toMatch(/^cpu-/);
    const host = ((await request(server.url).get('/hosts').set(bearer(admin))).body.items as { name: string; used: unknown }[]).find(
      (h) => h.name === placedOn,
    )!;
    expect(host.used).toEqual({ cpu_cores: 16, memory_mib: 65_536, disk_gib: 100 });
    await request(server.url).delete(`/vms/${response.body.id}`).set(bearer(user)).expect(200);
  });

  describe('hosts (admin)', () => {
    it('registers a host from nvidia-smi -q -x XML: one H200, 143,771 MiB, at 00000000:00:06.0', async () => {
      const response = await request(server.url)
        .post('/hosts/import?name=h200-01&cpu_cores=16&memory_mib=131072&disk_gib=2000&region=us-east-1')
        .set(bearer(admin))
        .set('Content-Type', 'application/xml')
        .send(H200_XML);
      expect(response.status).toBe(201);
      expect(response.body).toMatchObject({ name: 'h200-01', cpu_cores: 16, memory_mib: 131072, disk_gib: 2000, state: 'active' });
      expect(response.body.gpus).toEqual([
        expect.objectContaining({
          index: 0,
          product_name: 'NVIDIA H200',
          memory_mib: 143_771,
          pci_address: '00000000:00:06.0',
          uuid: 'GPU-3b6c5a73-17c2-f319-c5b0-563912c55e13',
          model: 'h200-141gb',
          mig_mode: 'disabled',
          sharing_mode: 'passthrough',
          vm_id: null,
        }),
      ]);
      // With the demo fleet's two H200s in MIG mode (h200-mig-01) in the same region.
      expect(await capacity()).toContainEqual(expect.objectContaining({ gpu_model: 'h200-141gb', region: 'us-east-1', total: 3, free: 3, largest_placeable: 1 }));

      // A GPU whose MIG mode is on registers in mig mode, so its profiles are schedulable at once.
      const migXml = H200_XML.replace('<current_mig>Disabled</current_mig>', '<current_mig>Enabled</current_mig>').replace(/GPU-3b6c5a73-17c2-f319-c5b0-563912c55e13/g, 'GPU-3b6c5a73-17c2-f319-c5b0-563912c55e14');
      const mig = await request(server.url)
        .post('/hosts/import?name=h200-mig-import&cpu_cores=16&memory_mib=131072&disk_gib=2000&region=eu-mig-1')
        .set(bearer(admin))
        .set('Content-Type', 'application/xml')
        .send(migXml);
      expect(mig.status).toBe(201);
      expect(mig.body.gpus).toEqual([expect.objectContaining({ mig_mode: 'enabled', sharing_mode: 'mig', model: 'h200-141gb' })]);
      const migRow = (await capacity()).find((r) => r.region === 'eu-mig-1')! as CapacityRow & { profiles: { profile: string; placeable_now: number }[] };
      expect(migRow).toMatchObject({ total: 1, free: 1, largest_placeable: 0 });
      expect(migRow.profiles).toContainEqual(expect.objectContaining({ profile: '7g.141gb', placeable_now: 1 }));
      await request(server.url).patch(`/hosts/${mig.body.id}`).set(bearer(admin)).send({ state: 'down' }).expect(200);

      const again = await request(server.url)
        .post('/hosts/import?name=h200-02&cpu_cores=16&memory_mib=131072&disk_gib=2000')
        .set(bearer(admin))
        .set('Content-Type', 'application/xml')
        .send(H200_XML);
      expect(again.status).toBe(409);
      expect(again.body.code).toBe('gpu_exists');
    });

    it('refuses malformed XML with 400, and bad query parameters naming them', async () => {
      const broken = await request(server.url)
        .post('/hosts/import?name=h200-03&cpu_cores=16&memory_mib=131072&disk_gib=2000')
        .set(bearer(admin))
        .set('Content-Type', 'application/xml')
        .send('<nvidia_smi_log><gpu>');
      expect(broken.status).toBe(400);
      expect(broken.body.errors[0].field).toBe('body');
      const badQuery = await request(server.url)
        .post('/hosts/import?name=h200-03&cpu_cores=lots&memory_mib=131072&disk_gib=2000')
        .set(bearer(admin))
        .set('Content-Type', 'application/xml')
        .send(H200_XML);
      expect(badQuery.status).toBe(400);
      expect(badQuery.body.errors[0].field).toBe('cpu_cores');
    });

    it('registers hosts from JSON, deriving model ids, and refuses duplicates and members', async () => {
      const body = {
        name: 'l4-99',
        region: 'eu-west-1',
        cpu_cores: 32,
        memory_mib: 131072,
        disk_gib: 1000,
        gpus: [{ product_name: 'NVIDIA L4', memory_mib: 23034, pci_address: '00000000:41:00.0', uuid: 'GPU-l4-99-0' }],
      };
      expect((await request(server.url).post('/hosts').set(bearer(user)).send(body)).status).toBe(403);
      const created = await request(server.url).post('/hosts').set(bearer(admin)).send(body);
      expect(created.status).toBe(201);
      expect(created.body.gpus[0].model).toBe('l4-24gb');
      const fetched = await request(server.url).get(`/hosts/${created.body.id}`).set(bearer(admin));
      expect(fetched.body).toEqual(created.body);
      expect((await request(server.url).post('/hosts').set(bearer(admin)).send(body)).status).toBe(409);
      const invalid = await request(server.url).post('/hosts').set(bearer(admin)).send({ ...body, name: 'x y', gpus: [{ product_name: 'x' }] });
      expect(invalid.status).toBe(400);
      expect(invalid.body.errors.map((e: { field: string }) => e.field)).toEqual(expect.arrayContaining(['name', 'gpus.0.memory_mib']));
    });

    it('stops placing on a draining host but keeps its VMs', async () => {
      const hosts = (await request(server.url).get('/hosts').set(bearer(admin))).body.items as { id: string; name: string }[];
      const west = hosts.find((h) => h.name === 'h100-02')!;
      const vm = await request(server.url).post('/vms').set(bearer(user)).send({ name: 'west', cpu_cores: 2, memory: 4096, disk_size: 10, gpu_count: 1, gpu_model: 'h100-80gb', region: 'us-west-2' });
      expect((await request(server.url).get(`/vms/${vm.body.id}`).set(bearer(admin))).body.host).toBe('h100-02');
      const drained = await request(server.url).patch(`/hosts/${west.id}`).set(bearer(admin)).send({ state: 'draining' });
      expect(drained.status).toBe(200);
      expect(drained.body.state).toBe('draining');
      expect(await h100('us-west-2')).toMatchObject({ allocated: 1, free: 0, unavailable: 7, largest_placeable: 0 });
      const refused = await request(server.url).post('/vms').set(bearer(user)).send({ name: 'west-2', cpu_cores: 2, memory: 4096, disk_size: 10, gpu_count: 1, gpu_model: 'h100-80gb', region: 'us-west-2' });
      expect(refused.status).toBe(503);
      expect((await request(server.url).get(`/vms/${vm.body.id}`).set(bearer(user))).body.status).toBe('created');
      await request(server.url).patch(`/hosts/${west.id}`).set(bearer(admin)).send({ state: 'active' }).expect(200);
      await request(server.url).delete(`/vms/${vm.body.id}`).set(bearer(user)).expect(200);
      expect((await request(server.url).patch(`/hosts/${west.id}`).set(bearer(admin)).send({ state: 'asleep' })).status).toBe(400);
    });
  });

  describe('quotas', () => {
    it('refuses over-quota requests with 403 naming the limit, shows usage, and lets an admin raise it', async () => {
      const token = await createUser(server.url, admin, 'quota-user');
      const me = (await request(server.url).get('/users/me').set(bearer(token))).body;
      const setQuota = (body: Record<string, unknown>) => request(server.url).put(`/users/${me.id}/quota`).set(bearer(admin)).send(body);
      expect((await request(server.url).put(`/users/${me.id}/quota`).set(bearer(token)).send({ gpus: 100 })).status).toBe(403);
      expect((await setQuota({ vcpus: 64, memory_mib: 524288, gpus: 2, vms: 20 })).body.quota).toEqual({ vcpus: 64, memory_mib: 524288, gpus: 2, gpu_milli: 2000, vms: 20 });

      const first = await request(server.url).post('/vms').set(bearer(token)).send({ name: 'q1', cpu_cores: 4, memory: 8192, disk_size: 10, gpu_count: 2 });
      expect(first.status).toBe(201);
      const over = await request(server.url).post('/vms').set(bearer(token)).send({ name: 'q2', cpu_cores: 4, memory: 8192, disk_size: 10, gpu_count: 1 });
      expect(over.status).toBe(403);
      expect(over.body).toMatchObject({ code: 'quota_exceeded', limit: 'gpus', quota: 2, used: 2, requested: 1 });
      const usage = (await request(server.url).get('/users/me').set(bearer(token))).body.usage;
      expect(usage).toEqual({ vcpus: 4, memory_mib: 8192, gpus: 2, gpu_milli: 2000, vms: 1 });

      expect((await request(server.url).post('/vms').set(bearer(token)).send({ name: 'q3', cpu_cores: 61, memory: 1024, disk_size: 10 })).body).toMatchObject({
        code: 'quota_exceeded',
        limit: 'vcpus',
      });
      await setQuota({ gpus: 3 });
      expect((await request(server.url).post('/vms').set(bearer(token)).send({ name: 'q2', cpu_cores: 4, memory: 8192, disk_size: 10, gpu_count: 1 })).status).toBe(201);
      await request(server.url).delete(`/vms/${first.body.id}`).set(bearer(token)).expect(200);
      expect((await request(server.url).get('/users/me').set(bearer(token))).body.usage).toEqual({ vcpus: 4, memory_mib: 8192, gpus: 1, gpu_milli: 1000, vms: 1 });
      expect((await setQuota({ gpus: -1 })).status).toBe(400);
    });
  });
});

describe('64 parallel 1-GPU creates against a fleet of exactly 16 GPUs (real server)', () => {
  let server: ServerHandle;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vmplane-16-'));
    const fleetFile = writeFleetFile(dir, [
      { name: 'gpu-a', gpus: 8 },
      { name: 'gpu-b', gpus: 8 },
    ]);
    server = await startServer({ dataDir: dir, env: { FLEET_FILE: fleetFile, QUOTA_GPUS: '1000', QUOTA_VMS: '1000', WORKER_CONCURRENCY: '64' } });
  });
  afterAll(() => server?.stop());

  it('gives exactly 16 a distinct GPU and refuses 48 with insufficient_capacity; the simulator agrees', async () => {
    const token = await login(server.url);
    const responses = await Promise.all(
      Array.from({ length: 64 }, (_, i) =>
        request(server.url).post('/vms').set(bearer(token)).send({ name: `job-${i}`, cpu_cores: 2, memory: 4096, disk_size: 20, gpu_count: 1 }),
      ),
    );
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(16);
    expect(statuses.filter((s) => s === 503)).toHaveLength(48);
    for (const r of responses.filter((r) => r.status === 503)) expect(r.body.code).toBe('insufficient_capacity');

    const winners = responses.filter((r) => r.status === 201).map((r) => r.body);
    const gpuIds = winners.map((vm) => vm.gpus[0].id);
    expect(new Set(gpuIds).size).toBe(16);

    const admin = await login(server.url, 'admin', 'adminpassword');
    const hosts = (await request(server.url).get('/hosts').set(bearer(admin))).body.items as { gpus: { id: string; uuid: string; vm_id: string }[] }[];
    const uuidById = new Map(hosts.flatMap((h) => h.gpus.map((g) => [g.id, g.uuid] as const)));
    const onHypervisor = hypervisorRows(server.hypervisorStatePath);
    expect(onHypervisor).toHaveLength(16);
    const attached = onHypervisor.flatMap((vm) => vm.gpus);
    expect(new Set(attached).size).toBe(16);
    expect(attached.sort()).toEqual(gpuIds.map((id) => uuidById.get(id)!).sort());
    for (const vm of winners) {
      expect(onHypervisor.some((row) => row.labels.includes(`vmplane.vm-id=${vm.id}`) && row.gpus[0] === uuidById.get(vm.gpus[0].id))).toBe(true);
    }
  });
});
