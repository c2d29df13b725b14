import request from 'supertest';
import { ORIGINAL_VM, bearer, createUser, headersOnly, login } from '../support/api';
import { ServerHandle, startServer } from '../support/server-process';

describe('VMs', () => {
  let server: ServerHandle;
  let alice: string;
  let bob: string;
  let admin: string;
  let ipCounter = 10;
  const uniqueIp = () => `10.0.0.${ipCounter++}`;
  const create = (token: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    request(server.url).post('/vms').set(bearer(token)).set(headers).send(body);

  beforeAll(async () => {
    server = await startServer({ env: { SDK_LATENCY_MS: '0' } });
    admin = await login(server.url, 'admin', 'adminpassword');
    alice = await createUser(server.url, admin, 'alice');
    bob = await createUser(server.url, admin, 'bob');
  });
  afterAll(() => server?.stop());

  describe('validation', () => {
    const valid = { name: 'ok', cpu_cores: 1, memory: 256, disk_size: 1 };
    it.each([
      ['name', { name: 'Bad_Name' }],
      ['name', { name: '-leading' }],
      ['name', { name: 'a'.repeat(64) }],
      ['name', { name: '' }],
      ['cpu_cores', { cpu_cores: 0 }],
      ['cpu_cores', { cpu_cores: 257 }],
      ['cpu_cores', { cpu_cores: 1.5 }],
      ['cpu_cores', { cpu_cores: '2' }],
      ['memory', { memory: 255 }],
      ['memory', { memory: 4_194_305 }],
      ['disk_size', { disk_size: 0 }],
      ['disk_size', { disk_size: 65_537 }],
      ['public_ip', { public_ip: '300.1.1.1' }],
      ['public_ip', { public_ip: 'localhost' }],
      ['labels', { labels: 'test' }],
      ['labels', { labels: Array.from({ length: 33 }, (_, i) => `l${i}`) }],
      ['labels', { labels: ['x'.repeat(64)] }],
      ['labels', { labels: [1] }],
      ['gpu_count', { gpu_count: 9 }],
      ['gpu_model', { gpu_model: 'h100<80gb>' }],
      ['gpu_model', { gpu_model: 'h'.repeat(65) }],
      ['gpu_model', { gpu_model: 'h100-80gb', gpu_count: 0 }],
      ['status', { status: 'created' }],
      ['id', { id: '00000000-0000-4000-8000-000000000000' }],
      ['owner', { owner: 'someone' }],
      ['surprise', { surprise: true }],
    ])('refuses a bad %s with a 400 problem naming it (%j)', async (field, patch) => {
      const response = await create(alice, { ...valid, ...patch });
      expect(response.status).toBe(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body).toMatchObject({ status: 400, code: 'validation_failed', type: expect.stringContaining('validation_failed') });
      expect(response.body.errors).toContainEqual(expect.objectContaining({ field }));
      expect(JSON.stringify(response.body)).not.toMatch(/at \w+ \(|node_modules/);
    });

    it('says read-only for fields the server sets', async () => {
      const response = await create(alice, { ...valid, status: 'created', created_at: 'x' });
      expect(response.body.errors).toEqual(
        expect.arrayContaining([
          { field: 'status', message: 'is read-only' },
          { field: 'created_at', message: 'is read-only' },
        ]),
      );
    });

    it('accepts the boundaries and IPv6', async () => {
      const response = await create(alice, {
        name: 'a'.repeat(63),
        cpu_cores: 256,
        memory: 256,
        disk_size: 1024,
        public_ip: '2001:db8::1',
        labels: Array.from({ length: 32 }, () => 'y'.repeat(63)),
      });
      expect(response.status).toBe(201);
      expect(response.body.public_ip).toBe('2001:db8::1');
      // The largest disk passes validation; no demo host has 64 TiB, so no host could ever hold it.
      const huge = await create(alice, { name: 'huge', cpu_cores: 1, memory: 256, disk_size: 65_536 });
      expect(huge.status).toBe(422);
      expect(huge.body).toMatchObject({ code: 'unsatisfiable', field: 'disk_size' });
    });

    it('refuses bodies over 1 MiB with 413 from their length alone, and malformed JSON with 400', async () => {
      // Only the headers: the answer must come before any of the body is read.
      const big = await headersOnly(server.url, 'POST', '/vms', { ...bearer(alice), 'content-type': 'application/json' }, 1024 * 1024 + 1);
      expect(big.status).toBe(413);
      expect(big.body.code).toBe('payload_too_large');
      expect(big.headers.connection).toBe('close');
      const broken = await request(server.url).post('/vms').set(bearer(alice)).set('Content-Type', 'application/json').send('{"name":');
      expect(broken.status).toBe(400);
      expect(broken.body.errors[0].field).toBe('body');
    });

    it('refuses a malformed id in the path with 400 naming it', async () => {
      const response = await request(server.url).get('/vms/not-a-uuid').set(bearer(alice));
      expect(response.status).toBe(400);
      expect(response.body.errors).toEqual([{ field: 'id', message: 'must be a UUID' }]);
    });
  });

  describe('public IPs', () => {
    it('refuses an IP another live VM uses with 409, and frees it on delete', async () => {
      const ip = uniqueIp();
      const first = await create(alice, { ...ORIGINAL_VM, public_ip: ip });
      expect(first.status).toBe(201);
      const clash = await create(bob, { ...ORIGINAL_VM, public_ip: ip });
      expect(clash.status).toBe(409);
      expect(clash.body).toMatchObject({ code: 'public_ip_in_use', field: 'public_ip' });
      await request(server.url).delete(`/vms/${first.body.id}`).set(bearer(alice)).expect(200);
      expect((await create(bob, { ...ORIGINAL_VM, public_ip: ip })).status).toBe(201);
    });
  });

  describe('tenancy', () => {
    it("hides another user's VM as 404 for get, delete and operations; admins see it", async () => {
      const vm = (await create(alice, { ...ORIGINAL_VM, public_ip: uniqueIp() })).body;
      for (const response of [
        await request(server.url).get(`/vms/${vm.id}`).set(bearer(bob)),
        await request(server.url).delete(`/vms/${vm.id}`).set(bearer(bob)),
        await request(server.url).get(`/vms/${vm.id}/operations`).set(bearer(bob)),
        await request(server.url).get(`/operations?vm_id=${vm.id}`).set(bearer(bob)),
      ]) {
        expect(response.status).toBe(404);
        expect(response.body.code).toBe('not_found');
      }
      expect((await request(server.url).get(`/vms/${vm.id}`).set(bearer(alice))).body.status).toBe('created');
      const bobsList = await request(server.url).get('/vms').set(bearer(bob));
      expect(bobsList.body.items.map((v: { id: string }) => v.id)).not.toContain(vm.id);
      const adminView = await request(server.url).get(`/vms/${vm.id}`).set(bearer(admin));
      expect(adminView.status).toBe(200);
      const adminList = await request(server.url).get('/vms?limit=200').set(bearer(admin));
      expect(adminList.body.items.map((v: { id: string }) => v.id)).toContain(vm.id);
    });

    it('returns 404 for a VM that does not exist', async () => {
      const response = await request(server.url).get('/vms/01900000-0000-7000-8000-000000000000').set(bearer(alice));
      expect(response.status).toBe(404);
    });
  });

  describe('lifecycle', () => {
    it('keeps deleted VMs: GET still returns them, DELETE again returns 200 unchanged, the list hides them unless asked', async () => {
      const token = await createUser(server.url, admin, 'carol');
      const vm = (await create(token, { ...ORIGINAL_VM, public_ip: null, name: 'keep-me' })).body;
      const first = await request(server.url).delete(`/vms/${vm.id}`).set(bearer(token));
      expect(first.status).toBe(200);
      const again = await request(server.url).delete(`/vms/${vm.id}`).set(bearer(token));
      expect(again.status).toBe(200);
      expect(again.body).toEqual(first.body);
      const ops = await request(server.url).get(`/vms/${vm.id}/operations`).set(bearer(token));
      expect(ops.body.items.filter((o: { action: string }) => o.action === 'delete')).toHaveLength(1);

      expect((await request(server.url).get('/vms').set(bearer(token))).body.items).toHaveLength(0);
      const deleted = await request(server.url).get('/vms?status=deleted').set(bearer(token));
      expect(deleted.body.items.map((v: { id: string }) => v.id)).toEqual([vm.id]);
    });

    it('refuses to delete a VM while its create runs (409 naming the operation), then deletes it once created', async () => {
      const slow = await startServer({ env: { SDK_LATENCY_MS: '1500' } });
      try {
        const token = await login(slow.url);
        const accepted = await request(slow.url).post('/vms').set(bearer(token)).set('Prefer', 'respond-async').send(ORIGINAL_VM);
        expect(accepted.status).toBe(202);
        expect(accepted.body.status).toBe('provisioning');
        const refused = await request(slow.url).delete(`/vms/${accepted.body.id}`).set(bearer(token));
        expect(refused.status).toBe(409);
        expect(refused.body).toMatchObject({ code: 'operation_in_progress', operation_id: accepted.headers.location.split('/').pop() });
        let status = accepted.body.status as string;
        for (const deadline = Date.now() + 15_000; status === 'provisioning' && Date.now() < deadline; ) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          status = (await request(slow.url).get(`/vms/${accepted.body.id}`).set(bearer(token))).body.status;
        }
        expect(status).toBe('created');
        const deleted = await request(slow.url).delete(`/vms/${accepted.body.id}`).set(bearer(token)).set('Prefer', 'wait=10');
        expect(deleted.status).toBe(200);
        expect(deleted.body).toMatchObject({ id: accepted.body.id, status: 'deleted' });
      } finally {
        await slow.stop();
      }
    });
  });

  describe('rename and relabel (PATCH)', () => {
    const patch = (token: string, id: string, body: unknown) => request(server.url).patch(`/vms/${id}`).set(bearer(token)).send(body as object);

    it('renames and replaces the labels, which the list filter follows, and logs an update operation', async () => {
      const label = `before-${ipCounter++}`;
      const vm = (await create(alice, { ...ORIGINAL_VM, name: 'old-name', public_ip: uniqueIp(), labels: [label, 'kept'] })).body;
      const updated = await patch(alice, vm.id, { name: 'new-name', labels: ['kept', `after-${label}`] });
      expect(updated.status).toBe(200);
      expect(updated.body).toMatchObject({ id: vm.id, name: 'new-name', labels: ['kept', `after-${label}`], status: 'created', created_at: vm.created_at });
      expect(Date.parse(updated.body.updated_at)).toBeGreaterThan(Date.parse(vm.updated_at));
      expect((await request(server.url).get(`/vms/${vm.id}`).set(bearer(alice))).body).toMatchObject({ name: 'new-name', labels: ['kept', `after-${label}`] });
      const listed = async (l: string) => (await request(server.url).get(`/vms?label=${l}`).set(bearer(alice))).body.items.map((v: { id: string }) => v.id);
      expect(await listed(label)).toEqual([]);
      expect(await listed(`after-${label}`)).toEqual([vm.id]);

      // Only the name: the labels stay.
      expect((await patch(alice, vm.id, { name: 'third-name' })).body).toMatchObject({ name: 'third-name', labels: ['kept', `after-${label}`] });
      // No labels at all.
      expect((await patch(alice, vm.id, { labels: [] })).body.labels).toEqual([]);

      const ops = (await request(server.url).get(`/vms/${vm.id}/operations`).set(bearer(alice))).body.items;
      expect(ops.filter((op: { action: string }) => op.action === 'update')).toHaveLength(3);
      expect(ops[0]).toMatchObject({ action: 'update', status: 'succeeded', error: null });
      await request(server.url).delete(`/vms/${vm.id}`).set(bearer(alice)).expect(200);
    });

    it('refuses an empty or null change, a bad name and bad labels with 400 naming the field', async () => {
      const vm = (await create(alice, { ...ORIGINAL_VM, public_ip: uniqueIp() })).body;
      for (const [body, field] of [
        [{}, 'body'],
        [{ name: null }, 'name'],
        [{ labels: null }, 'labels'],
        [{ name: 'Bad_Name' }, 'name'],
        [{ labels: ['x'.repeat(64)] }, 'labels'],
        [{ labels: Array.from({ length: 33 }, (_, i) => `l${i}`) }, 'labels'],
        [{ status: 'deleted' }, 'status'],
      ] as const) {
        const response = await patch(alice, vm.id, body);
        expect(response.status).toBe(400);
        expect(response.body.errors).toContainEqual(expect.objectContaining({ field }));
      }
      expect((await request(server.url).get(`/vms/${vm.id}`).set(bearer(alice))).body).toMatchObject({ name: vm.name, labels: vm.labels, updated_at: vm.updated_at });
      await request(server.url).delete(`/vms/${vm.id}`).set(bearer(alice)).expect(200);
    });

    it("answers 404 for another user's VM and 409 for a deleted one, changing neither", async () => {
      const vm = (await create(alice, { ...ORIGINAL_VM, public_ip: uniqueIp() })).body;
      expect((await patch(bob, vm.id, { name: 'stolen' })).status).toBe(404);
      expect((await patch(admin, vm.id, { labels: ['seen-by-admin'] })).status).toBe(200);
      await request(server.url).delete(`/vms/${vm.id}`).set(bearer(alice)).expect(200);
      const late = await patch(alice, vm.id, { name: 'too-late' });
      expect(late.status).toBe(409);
      expect(late.body).toMatchObject({ code: 'invalid_state', current_status: 'deleted', allowed_actions: [] });
      expect((await request(server.url).get(`/vms/${vm.id}`).set(bearer(alice))).body).toMatchObject({ name: vm.name, labels: ['seen-by-admin'], status: 'deleted' });
    });
  });

  describe('listing', () => {
    it('filters by status and label and pages with a cursor, newest first', async () => {
      const token = await createUser(server.url, admin, 'dave');
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        const labels = i % 2 === 0 ? ['even', 'all'] : ['odd', 'all'];
        const response = await create(token, { name: `vm-${i}`, cpu_cores: 1, memory: 256, disk_size: 1, labels });
        ids.push(response.body.id);
      }
      await request(server.url).delete(`/vms/${ids[0]}`).set(bearer(token)).expect(200);

      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: request.Response = await request(server.url)
          .get('/vms')
          .query(cursor ? { limit: 2, cursor } : { limit: 2 })
          .set(bearer(token));
        expect(page.status).toBe(200);
        expect(page.body.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.body.items.map((v: { id: string }) => v.id));
        cursor = page.body.next_cursor;
        pages++;
      } while (cursor);
      expect(pages).toBe(3);
      expect(seen).toEqual(ids.slice(1).reverse());

      const odd = await request(server.url).get('/vms?label=odd').set(bearer(token));
      expect(odd.body.items.map((v: { name: string }) => v.name).sort()).toEqual(['vm-1', 'vm-3', 'vm-5']);
      const even = await request(server.url).get('/vms?label=even').set(bearer(token));
      expect(even.body.items).toHaveLength(3);
      const evenDeleted = await request(server.url).get('/vms?label=even&status=deleted').set(bearer(token));
      expect(evenDeleted.body.items.map((v: { id: string }) => v.id)).toEqual([ids[0]]);
    });

    it('refuses bad query parameters with 400 naming them', async () => {
      for (const [query, field] of [
        ['limit=0', 'limit'],
        ['limit=abc', 'limit'],
        ['status=running', 'status'],
        ['cursor=garbage', 'cursor'],
        ['sort=name', 'sort'],
      ]) {
        const response = await request(server.url).get(`/vms?${query}`).set(bearer(alice));
        expect(response.status).toBe(400);
        expect(response.body.errors[0].field).toBe(field);
      }
    });
  });

  describe('operations', () => {
    it('records each attempt with its actor and timestamps, readable by id', async () => {
      const vm = (await create(alice, { ...ORIGINAL_VM, public_ip: null })).body;
      const ops = await request(server.url).get(`/operations?vm_id=${vm.id}`).set(bearer(alice));
      expect(ops.body.items).toHaveLength(1);
      const op = ops.body.items[0];
      expect(op).toMatchObject({ action: 'create', status: 'succeeded', attempts: 1, error: null, vm_id: vm.id, user_id: vm.owner_id });
      const one = await request(server.url).get(`/operations/${op.id}`).set(bearer(alice));
      expect(one.body).toEqual(op);
      expect((await request(server.url).get(`/operations/${op.id}`).set(bearer(bob))).status).toBe(404);
    });
  });

  describe('X-Request-Id', () => {
    it('echoes a client request id, or makes one', async () => {
      const echoed = await request(server.url).get('/health').set('X-Request-Id', 'abc-123');
      expect(echoed.headers['x-request-id']).toBe('abc-123');
      const made = await request(server.url).get('/health');
      expect(made.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      const problem = await request(server.url).get('/vms').set('X-Request-Id', 'req-77');
      expect(problem.body.request_id).toBe('req-77');
    });
  });
});
