import request from 'supertest';
import { bearer, createUser, login } from '../support/api';
import { ServerHandle, startServer } from '../support/server-process';

const H200 = 'h200-141gb';

interface ProfileRow {
  profile: string;
  placeable_now: number;
  gpu_milli: number;
}

interface HostGpu {
  id: string;
  index: number;
  model: string;
  sharing_mode: string;
  fractional_vms: number;
}

describe('fractional GPUs (MIG profiles) on the demo fleet', () => {
  let server: ServerHandle;
  let admin: string;
  let user: string;
  const capacityRow = async (model = H200, region = 'us-east-1') =>
    ((await request(server.url).get('/capacity').set(bearer(user))).body.items as { gpu_model: string; region: string; total: number; allocated: number; profiles: ProfileRow[]; largest_placeable: number }[]).find(
      (r) => r.gpu_model === model && r.region === region,
    )!;
  const placeable = async (profile: string) => (await capacityRow()).profiles.find((p) => p.profile === profile)!.placeable_now;
  const migHost = async () =>
    ((await request(server.url).get('/hosts').set(bearer(admin))).body.items as { id: string; name: string; gpus: HostGpu[] }[]).find((h) => h.name === 'h200-mig-01')!;
  const create = (token: string, body: Record<string, unknown>) =>
    request(server.url)
      .post('/vms')
      .set(bearer(token))
      .send({ name: 'slice', cpu_cores: 4, memory: 16_384, disk_size: 50, ...body });

  beforeAll(async () => {
    server = await startServer();
    admin = await login(server.url, 'admin', 'adminpassword');
    user = await login(server.url);
  });
  afterAll(() => server?.stop());

  it('the capacity view lists the H200 MIG profiles that fit now, honouring the slot layout', async () => {
    const row = await capacityRow();
    expect(row).toMatchObject({ gpu_model: H200, region: 'us-east-1', total: 2, allocated: 0, largest_placeable: 0 });
    expect(row.profiles.map((p) => [p.profile, p.placeable_now, p.gpu_milli])).toEqual([
      ['1g.18gb', 14, 143],
      ['1g.18gb+me', 2, 143],
      ['1g.35gb', 8, 143],
      ['2g.35gb', 6, 286],
      ['3g.71gb', 4, 429],
      ['4g.71gb', 2, 572],
      ['7g.141gb', 2, 1000],
    ]);
    // Passthrough models list no profiles.
    expect((await capacityRow('h100-80gb')).profiles).toEqual([]);
  });

  it('creates a VM with a 3g.71gb: the response shows the profile, the physical GPU and its slots; capacity drops; delete gives it back', async () => {
    const created = await create(user, { gpu_profile: '3g.71gb', gpu_model: H200 });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ status: 'created', gpu_profile: '3g.71gb', gpu_count: 0, gpu_model: H200, region: 'us-east-1' });
    expect(created.body.gpus).toEqual([
      { id: expect.any(String), uuid: expect.stringMatching(/^GPU-/), index: expect.any(Number), model: H200, memory_mib: 143771, pci_address: expect.any(String), slots: [4, 5, 6, 7] },
    ]);
    expect(await placeable('3g.71gb')).toBe(3);
    expect(await placeable('7g.141gb')).toBe(1);
    expect((await capacityRow()).allocated).toBe(1);
    expect((await request(server.url).get(`/vms/${created.body.id}`).set(bearer(user))).body.gpus[0].slots).toEqual([4, 5, 6, 7]);
    expect((await request(server.url).get('/users/me').set(bearer(user))).body.usage).toMatchObject({ gpus: 0.429, gpu_milli: 429 });

    await request(server.url).delete(`/vms/${created.body.id}`).set(bearer(user)).expect(200);
    expect(await placeable('3g.71gb')).toBe(4);
    expect((await request(server.url).get('/users/me').set(bearer(user))).body.usage.gpu_milli).toBe(0);
  });

  it('a GPU changes sharing mode only while no VM holds it: 409 gpu_busy while busy, 200 when idle; mig on an L4 is a 400', async () => {
    const vm = await create(user, { name: 'busy', gpu_profile: '1g.18gb', gpu_model: H200 });
    expect(vm.status).toBe(201);
    const host = await migHost();
    const held = host.gpus.find((g) => g.id === vm.body.gpus[0].id)!;
    const idle = host.gpus.find((g) => g.id !== held.id)!;
    expect(held.fractional_vms).toBe(1);
    const patch = (gpuId: string, sharing_mode: string, hostId = host.id) =>
      request(server.url).patch(`/hosts/${hostId}/gpus/${gpuId}`).set(bearer(admin)).send({ sharing_mode });

    const busy = await patch(held.id, 'passthrough');
    expect(busy.status).toBe(409);
    expect(busy.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(busy.body).toMatchObject({ code: 'gpu_busy', field: 'sharing_mode', gpu_id: held.id });
    expect((await patch(held.id, 'passthrough')).status).toBe(409);
    expect((await request(server.url).patch(`/hosts/${host.id}/gpus/${idle.id}`).set(bearer(user)).send({ sharing_mode: 'vgpu' })).status).toBe(403);

    const changed = await patch(idle.id, 'passthrough');
    expect(changed.status).toBe(200);
    expect(changed.body.gpus.find((g: HostGpu) => g.id === idle.id)).toMatchObject({ sharing_mode: 'passthrough', fractional_vms: 0 });
    expect(await placeable('7g.141gb')).toBe(0); // one MIG GPU left, and it holds a 1g
    expect((await capacityRow()).largest_placeable).toBe(1); // the idle one is a whole GPU now
    expect((await patch(idle.id, 'mig')).status).toBe(200);

    const l4 = ((await request(server.url).get('/hosts').set(bearer(admin))).body.items as { id: string; name: string; gpus: HostGpu[] }[]).find((h) => h.name === 'l4-01')!;
    const invalid = await patch(l4.gpus[0].id, 'mig', l4.id);
    expect(invalid.status).toBe(400);
    expect(invalid.body.errors).toEqual([{ field: 'sharing_mode', message: expect.stringContaining('l4-24gb has none') }]);
    expect((await patch(l4.gpus[0].id, 'sideways', l4.id)).body.errors).toEqual([expect.objectContaining({ field: 'sharing_mode' })]);

    await request(server.url).delete(`/vms/${vm.body.id}`).set(bearer(user)).expect(200);
    expect((await patch(held.id, 'passthrough')).status).toBe(200);
    expect((await patch(held.id, 'mig')).status).toBe(200);
  });

  it('a resize keeps the fractional GPU: gpu_count is a 400 naming it; cpu_cores and memory change with the same slots', async () => {
    const vm = (await create(user, { name: 'resize-slice', gpu_profile: '2g.35gb', gpu_model: H200 })).body;
    const act = (action: string, body: Record<string, unknown> = {}) => request(server.url).post(`/vms/${vm.id}/${action}`).set(bearer(user)).send(body);
    expect((await act('stop')).status).toBe(200);
    const refused = await act('resize', { gpu_count: 1 });
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toEqual([{ field: 'gpu_count', message: expect.stringContaining('fractional GPU 2g.35gb') }]);
    const resized = await act('resize', { cpu_cores: 8, memory: 32_768 });
    expect(resized.status).toBe(200);
    expect(resized.body).toMatchObject({ cpu_cores: 8, memory: 32_768, gpu_profile: '2g.35gb', gpu_count: 0 });
    expect(resized.body.gpus.map((g: { id: string; slots: number[] }) => [g.id, g.slots])).toEqual(vm.gpus.map((g: { id: string; slots: number[] }) => [g.id, g.slots]));
    await request(server.url).delete(`/vms/${vm.id}`).set(bearer(user)).expect(200);
  });

  it('quotas count milli-GPUs: two 3g.71gb (429 each) fit a quota of one GPU, a 1g more (143) does not', async () => {
    const token = await createUser(server.url, admin, 'milli-user');
    const me = (await request(server.url).get('/users/me').set(bearer(token))).body;
    const quota = await request(server.url).put(`/users/${me.id}/quota`).set(bearer(admin)).send({ gpu_milli: 1000 });
    expect(quota.body.quota).toMatchObject({ gpus: 1, gpu_milli: 1000 });
    expect((await create(token, { name: 'a', gpu_profile: '3g.71gb', gpu_model: H200 })).status).toBe(201);
    expect((await create(token, { name: 'b', gpu_profile: '3g.71gb', gpu_model: H200 })).status).toBe(201);
    const over = await create(token, { name: 'c', gpu_profile: '1g.18gb', gpu_model: H200 });
    expect(over.status).toBe(403);
    expect(over.body).toMatchObject({ code: 'quota_exceeded', limit: 'gpus', quota_milli: 1000, used_milli: 858, requested_milli: 143 });
    expect(over.body.detail).toBe('Quota exceeded for gpus: 858 milli-GPUs used + 143 requested > 1000 allowed (1000 milli-GPUs = 1 GPU)');
    expect((await request(server.url).get('/users/me').set(bearer(token))).body.usage).toMatchObject({ gpus: 0.858, gpu_milli: 858, vms: 2 });
    // Whole GPUs count 1000 each: PUT {gpus: N} is N × 1000.
    expect((await request(server.url).put(`/users/${me.id}/quota`).set(bearer(admin)).send({ gpus: 2 })).body.quota).toMatchObject({ gpus: 2, gpu_milli: 2000 });
    expect((await create(token, { name: 'c', gpu_profile: '1g.18gb', gpu_model: H200 })).status).toBe(201);
    expect((await request(server.url).put(`/users/${me.id}/quota`).set(bearer(admin)).send({ gpus: 2, gpu_milli: 2000 })).status).toBe(400);
  });

  it('a profile that is not one of the model is a 400 listing the valid ones; gpu_profile with gpu_count is a 400; a vGPU size with no GPU in vgpu mode is a 422', async () => {
    const unknown = await create(user, { gpu_profile: '3g.40gb', gpu_model: H200 });
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors).toEqual([
      { field: 'gpu_profile', message: '3g.40gb is not a profile of h200-141gb; valid: 1/8, 1/4, 1/2, 1, 1g.18gb, 1g.18gb+me, 1g.35gb, 2g.35gb, 3g.71gb, 4g.71gb, 7g.141gb' },
    ]);
    const both = await create(user, { gpu_profile: '1g.18gb', gpu_count: 1, gpu_model: H200 });
    expect(both.status).toBe(400);
    expect(both.body.errors).toEqual([{ field: 'gpu_profile', message: 'cannot be given with gpu_count (1): ask for a GPU slice or for whole GPUs, not both' }]);
    const noVgpu = await create(user, { gpu_profile: '1/4' });
    expect(noVgpu.status).toBe(422);
    expect(noVgpu.body).toMatchObject({ code: 'unsatisfiable', field: 'gpu_profile', available: { shared_gpus: [`${H200} mig`] } });
  });
});
