import request from 'supertest';
import { bearer, login } from '../support/api';
import { ServerHandle, startServer } from '../support/server-process';

/** Issue 12: a host can be renamed, relabelled and removed; removal keeps its record. */
describe('hosts: rename, relabel, remove (admin)', () => {
  let server: ServerHandle;
  let admin: string;
  let member: string;
  let seq = 0;

  beforeAll(async () => {
    server = await startServer();
    admin = await login(server.url, 'admin', 'adminpassword');
    member = await login(server.url);
  });
  afterAll(() => server?.stop());

  /** A one-GPU host alone in a region of its own, so that placements elsewhere never touch it. */
  async function newHost(name: string, labels?: string[], gpuUuid = `GPU-e2e-${name}`) {
    const region = `e2e-hosts-${++seq}`;
    const response = await request(server.url)
      .post('/hosts')
      .set(bearer(admin))
      .send({
        name,
        region,
        cpu_cores: 16,
        memory_mib: 65536,
        disk_gib: 500,
        ...(labels ? { labels } : {}),
        gpus: [{ product_name: 'NVIDIA H100 80GB HBM3', memory_mib: 81559, pci_address: '00000000:18:00.0', uuid: gpuUuid }],
      });
    expect(response.status).toBe(201);
    return response.body as { id: string; name: string; region: string; labels: string[]; state: string; updated_at: string };
  }
  const patch = (id: string, body: unknown, token = admin) => request(server.url).patch(`/hosts/${id}`).set(bearer(token)).send(body as object);
  const remove = (id: string, token = admin) => request(server.url).delete(`/hosts/${id}`).set(bearer(token));
  const listed = async (query = '') => ((await request(server.url).get(`/hosts${query}`).set(bearer(admin)).expect(200)).body.items as { id: string }[]).map((h) => h.id);

  it('renames and relabels; updated_at moves; only the fields sent change', async () => {
    const host = await newHost('e2e-rename-a', ['rack-1']);
    expect(host.labels).toEqual(['rack-1']);
    await new Promise((r) => setTimeout(r, 5));
    const renamed = await patch(host.id, { name: 'e2e-rename-b' });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ id: host.id, name: 'e2e-rename-b', labels: ['rack-1'], state: 'active' });
    expect(Date.parse(renamed.body.updated_at)).toBeGreaterThan(Date.parse(host.updated_at));

    const relabelled = await patch(host.id, { labels: ['rack-2', 'nvlink'], state: 'draining' });
    expect(relabelled.body).toMatchObject({ name: 'e2e-rename-b', labels: ['rack-2', 'nvlink'], state: 'draining' });
    const fetched = await request(server.url).get(`/hosts/${host.id}`).set(bearer(admin));
    expect(fetched.body).toMatchObject({ name: 'e2e-rename-b', labels: ['rack-2', 'nvlink'], state: 'draining' });
  });

  it('refuses a taken name (409 host_exists), unknown fields, nulls, wrong types and the removed state (400 naming the field)', async () => {
    const a = await newHost('e2e-clash-a');
    const b = await newHost('e2e-clash-b');
    const clash = await patch(a.id, { name: b.name });
    expect(clash.status).toBe(409);
    expect(clash.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(clash.body).toMatchObject({ code: 'host_exists', field: 'name', status: 409 });

    const cases: [unknown, string, string][] = [
      [{ region: 'elsewhere' }, 'region', 'is not a known field'],
      [{ name: null }, 'name', 'must not be null'],
      [{ labels: null }, 'labels', 'must not be null'],
      [{ name: 42 }, 'name', 'must be a string'],
      [{ labels: 'rack' }, 'labels', 'must be an array'],
      [{ state: 'removed' }, 'state', 'must be one of the following values: active, draining, down'],
    ];
    for (const [body, field, message] of cases) {
      const response = await patch(a.id, body);
      expect({ body, status: response.status, code: response.body.code, errors: response.body.errors }).toEqual({
        body,
        status: 400,
        code: 'validation_failed',
        errors: [{ field, message }],
      });
    }
    expect((await patch('019abcde-0000-7000-8000-000000000000', { name: 'ghost' })).status).toBe(404);
  });

  it('DELETE refuses a host with a live VM (409 host_has_vms with counts); an empty one is removed (204), kept, hidden unless ?include_removed=true, and cannot be changed', async () => {
    const host = await newHost('e2e-remove');
    const vm = await request(server.url)
      .post('/vms')
      .set(bearer(member))
      .send({ name: 'on-doomed-host', cpu_cores: 2, memory: 4096, disk_size: 20, gpu_count: 1, gpu_model: 'h100-80gb', region: host.region });
    expect(vm.status).toBe(201);

    const refused = await remove(host.id);
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 'host_has_vms', live_vms: 1, shelved_vms: 0 });

    await request(server.url).delete(`/vms/${vm.body.id}`).set(bearer(member)).expect(200);
    const removed = await remove(host.id);
    expect(removed.status).toBe(204);
    expect(removed.text).toBe('');
    expect((await remove(host.id)).status).toBe(204);

    const shown = await request(server.url).get(`/hosts/${host.id}`).set(bearer(admin));
    expect(shown.body).toMatchObject({ id: host.id, name: 'e2e-remove', state: 'removed' });
    expect(await listed()).not.toContain(host.id);
    expect(await listed('?include_removed=true')).toContain(host.id);
    expect(await listed('?include_removed=false')).not.toContain(host.id);
    expect((await request(server.url).get('/hosts?include_removed=maybe').set(bearer(admin))).body.errors).toEqual([
      { field: 'include_removed', message: 'must be a boolean value' },
    ]);

    const changed = await patch(host.id, { labels: ['back'] });
    expect(changed.status).toBe(409);
    expect(changed.body).toMatchObject({ code: 'host_removed', host_id: host.id });
    const gpuMode = await request(server.url).patch(`/hosts/${host.id}/gpus/${shown.body.gpus[0].id}`).set(bearer(admin)).send({ sharing_mode: 'vgpu' });
    expect(gpuMode.status).toBe(409);
    expect(gpuMode.body).toMatchObject({ code: 'host_removed', host_id: host.id });

    // Out of /capacity, and out of placement: its region has no host left.
    const capacity = await request(server.url).get('/capacity').set(bearer(member));
    expect(capacity.body.items.filter((i: { region: string }) => i.region === host.region)).toEqual([]);
    const nowhere = await request(server.url)
      .post('/vms')
      .set(bearer(member))
      .send({ name: 'nowhere', cpu_cores: 2, memory: 4096, disk_size: 20, gpu_count: 1, gpu_model: 'h100-80gb', region: host.region });
    expect(nowhere.status).toBe(422);
    expect(nowhere.body).toMatchObject({ code: 'unsatisfiable', field: 'region' });

    // The name is free again for a replacement machine (its GPUs are new; the old ones' UUIDs stay with the removed record).
    const replacement = await newHost('e2e-remove', undefined, 'GPU-e2e-replacement');
    expect(replacement.id).not.toBe(host.id);
  });

  it('PATCH /users/{id} with "role": null or "disabled": null is a 400 naming the field, not a silent no-op', async () => {
    const id = (await request(server.url).get('/users/me').set(bearer(member))).body.id;
    for (const field of ['role', 'disabled']) {
      const response = await request(server.url).patch(`/users/${id}`).set(bearer(admin)).send({ [field]: null });
      expect({ field, status: response.status, errors: response.body.errors }).toEqual({ field, status: 400, errors: [{ field, message: 'must not be null' }] });
    }
    expect((await request(server.url).get('/users/me').set(bearer(member))).body).toMatchObject({ role: 'member', disabled: false });
  });

  it('members get 403 on every host admin route', async () => {
    const host = await newHost('e2e-forbidden');
    for (const response of [await patch(host.id, { name: 'mine' }, member), await remove(host.id, member), await request(server.url).get('/hosts?include_removed=true').set(bearer(member))]) {
      expect(response.status).toBe(403);
      expect(response.body.code).toBe('forbidden');
    }
    expect((await request(server.url).get(`/hosts/${host.id}`).set(bearer(admin))).body.name).toBe('e2e-forbidden');
  });

  it('/openapi.json shows each error response of POST /vms with its own example, and documents the host routes', async () => {
    const spec = (await request(server.url).get('/openapi.json').expect(200)).body;
    const responses = spec.paths['/vms'].post.responses;
    const examples = (status: string) => responses[status].content['application/problem+json'].examples;
    const value = (status: string, code: string) => examples(status)[code].value;

    expect(value('400', 'validation_failed')).toMatchObject({ status: 400, code: 'validation_failed', errors: [{ field: 'cpu_cores', message: 'must be an integer' }] });
    expect(value('401', 'unauthenticated')).toMatchObject({ status: 401, code: 'unauthenticated' });
    expect(Object.keys(examples('403')).sort()).toEqual(['forbidden', 'quota_exceeded']);
    expect(value('403', 'quota_exceeded')).toMatchObject({ limit: 'gpus', quota: 8 });
    expect(Object.keys(examples('409')).sort()).toEqual(['public_ip_in_use', 'request_in_progress']);
    expect(value('409', 'public_ip_in_use')).toMatchObject({ status: 409, field: 'public_ip' });
    expect(value('413', 'payload_too_large')).toMatchObject({ status: 413, limit_bytes: expect.any(Number) });
    expect(value('415', 'unsupported_media_type')).toMatchObject({ status: 415, accepted: ['application/json'] });
    expect(value('422', 'unsatisfiable')).toMatchObject({ status: 422, field: 'gpu_model', reason: expect.any(String), available: expect.any(Object) });
    expect(value('503', 'insufficient_capacity')).toMatchObject({ status: 503, alternatives: expect.any(Array) });
    expect(responses['503'].headers['Retry-After']).toBeDefined();
    expect(responses['400'].headers).toBeUndefined();
    // No response carries another status's example.
    for (const [status, response] of Object.entries(responses) as [string, { content?: Record<string, { examples?: Record<string, { value: { status: number } }> }> }][]) {
      for (const example of Object.values(response.content?.['application/problem+json']?.examples ?? {})) expect(example.value.status).toBe(Number(status));
    }
    const getVm = spec.paths['/vms/{id}'].get.responses['404'].content['application/problem+json'].examples;
    expect(getVm.not_found.value).toMatchObject({ status: 404, code: 'not_found', resource: 'vm' });

    const hostRoutes = spec.paths['/hosts/{id}'];
    // A host route's 404 shows a missing host, not a missing VM.
    expect(hostRoutes.get.responses['404'].content['application/problem+json'].examples.not_found.value).toMatchObject({ status: 404, resource: 'host', instance: expect.stringMatching(/^\/hosts\//) });
    expect(Object.keys(hostRoutes.delete.responses['409'].content['application/problem+json'].examples)).toEqual(['host_has_vms']);
    expect(hostRoutes.delete.responses['409'].content['application/problem+json'].examples.host_has_vms.value).toMatchObject({ live_vms: 2, shelved_vms: 1 });
    expect(Object.keys(hostRoutes.patch.responses['409'].content['application/problem+json'].examples).sort()).toEqual(['host_exists', 'host_removed']);
    expect(spec.paths['/hosts'].get.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'include_removed', in: 'query' })]));
  });
});
