import request from 'supertest';
import { bearer, createUser, login } from '../support/api';
import { ServerHandle, startServer } from '../support/server-process';

const VM = { name: 'life', cpu_cores: 2, memory: 4096, disk_size: 20 };

/** Stop, start, reboot, shelve, unshelve, resize, and the capacity queue, over HTTP against the real server. */
describe('the VM lifecycle (real server)', () => {
  let server: ServerHandle;
  let token: string;
  let admin: string;
  const post = (path: string, body?: object, as = token) => request(server.url).post(path).set(bearer(as)).send(body ?? {});
  const get = (path: string, as = token) => request(server.url).get(path).set(bearer(as));
  const capacity = async (model: string, region: string) =>
    ((await get('/capacity')).body.items as { gpu_model: string; region: string; free: number }[]).find((c) => c.gpu_model === model && c.region === region)!;

  beforeAll(async () => {
    server = await startServer();
    token = await login(server.url);
    admin = await login(server.url, 'admin', 'adminpassword');
  });
  afterAll(() => server?.stop());

  it('stop, start, reboot, shelve, unshelve, resize: each an operation with the documented answers', async () => {
    const vm = (await post('/vms', { ...VM, gpu_count: 2, gpu_model: 'l40s-48gb', region: 'us-west-2' })).body;
    expect(vm).toMatchObject({ status: 'created', power_state: 'running' });

    const wrong = await post(`/vms/${vm.id}/start`);
    expect(wrong.status).toBe(409);
    expect(wrong.body).toMatchObject({ code: 'invalid_state', current_status: 'created', power_state: 'running', allowed_actions: ['delete', 'stop', 'reboot', 'shelve', 'update'] });

    expect((await post(`/vms/${vm.id}/stop`)).body).toMatchObject({ status: 'created', power_state: 'shut_off' });
    expect((await post(`/vms/${vm.id}/resize`, { memory: 8192 })).body).toMatchObject({ memory: 8192, power_state: 'shut_off' });
    expect((await post(`/vms/${vm.id}/start`)).body.power_state).toBe('running');
    const reboot = await request(server.url).post(`/vms/${vm.id}/reboot`).set(bearer(token)).set('Prefer', 'respond-async').send({ hard: true });
    expect(reboot.status).toBe(202);
    const followed = await eventuallyOp(reboot.headers.location);
    expect(followed).toMatchObject({ action: 'reboot', status: 'succeeded' });

    const freeBefore = (await capacity('l40s-48gb', 'us-west-2')).free;
    const shelved = await post(`/vms/${vm.id}/shelve`);
    expect(shelved.status).toBe(200);
    expect(shelved.body).toMatchObject({ status: 'shelved', power_state: 'shut_off' });
    expect((await capacity('l40s-48gb', 'us-west-2')).free).toBe(freeBefore + 2);
    expect((await get('/users/me')).body.usage.gpus).toBe(0);

    const back = await post(`/vms/${vm.id}/unshelve`);
    expect(back.status).toBe(200);
    expect(back.body).toMatchObject({ status: 'created', power_state: 'running', region: 'us-west-2', gpu_count: 2 });
    expect((await capacity('l40s-48gb', 'us-west-2')).free).toBe(freeBefore);

    const log = (await get(`/vms/${vm.id}/operations`)).body.items.map((o: { action: string; status: string }) => `${o.action}:${o.status}`);
    expect(log).toEqual(['unshelve:succeeded', 'shelve:succeeded', 'reboot:succeeded', 'start:succeeded', 'resize:succeeded', 'stop:succeeded', 'create:succeeded']);
    expect((await request(server.url).delete(`/vms/${vm.id}`).set(bearer(token))).body.status).toBe('deleted');
  });

  it('another user’s VM is a 404 for every action; a retried stop with the same Idempotency-Key is one operation', async () => {
    const vm = (await post('/vms', VM)).body;
    const other = await createUser(server.url, admin, 'life-other');
    for (const action of ['stop', 'start', 'reboot', 'shelve', 'unshelve', 'resize']) {
      expect((await post(`/vms/${vm.id}/${action}`, action === 'resize' ? { memory: 512 } : {}, other)).status).toBe(404);
    }
    const first = await request(server.url).post(`/vms/${vm.id}/stop`).set(bearer(token)).set('Idempotency-Key', 'stop-once').send({});
    const again = await request(server.url).post(`/vms/${vm.id}/stop`).set(bearer(token)).set('Idempotency-Key', 'stop-once').send({});
    expect([first.status, again.status]).toEqual([200, 200]);
    expect(again.headers['idempotent-replayed']).toBe('true');
    const stops = (await get(`/vms/${vm.id}/operations`)).body.items.filter((o: { action: string }) => o.action === 'stop');
    expect(stops).toHaveLength(1);
  });

  it('a create that waits for capacity gets a GPU as soon as one frees, in arrival order, and /capacity shows the queue', async () => {
    // us-east-1 has one host with 8 H100s: take them all.
    const holder = (await post('/vms', { ...VM, name: 'holder', gpu_count: 8, gpu_model: 'h100-80gb', region: 'us-east-1' })).body;
    expect(holder.status).toBe('created');
    const refused = await post('/vms', { ...VM, name: 'now', gpu_count: 1, gpu_model: 'h100-80gb', region: 'us-east-1' });
    expect(refused.status).toBe(503);
    const noAsync = await post('/vms', { ...VM, name: 'sync-wait', gpu_count: 1, gpu_model: 'h100-80gb', region: 'us-east-1', wait_for_capacity_seconds: 60 });
    expect(noAsync.status).toBe(400);
    expect(noAsync.body.errors).toEqual([{ field: 'wait_for_capacity_seconds', message: expect.stringMatching(/Prefer: respond-async/) }]);

    const wait = (name: string) =>
      request(server.url)
        .post('/vms')
        .set(bearer(token))
        .set('Prefer', 'respond-async')
        .send({ ...VM, name, gpu_count: 1, gpu_model: 'h100-80gb', region: 'us-east-1', wait_for_capacity_seconds: 60 });
    const first = await wait('waiter-1');
    const second = await wait('waiter-2');
    expect(first.status).toBe(202);
    expect([first.headers['queue-position'], second.headers['queue-position']]).toEqual(['1', '2']);
    expect(first.body).toMatchObject({ status: 'provisioning', host: null });
    const queues = (await get('/capacity')).body.queues;
    expect(queues).toEqual([{ gpu_model: 'h100-80gb', region: 'us-east-1', length: 2, oldest_age_seconds: expect.any(Number) }]);
    expect((await get(first.headers.location)).body).toMatchObject({ status: 'waiting_for_capacity', queue_position: 1 });

    // Free one GPU: shrink the holder from 8 to 7 (stop, resize, start).
    await post(`/vms/${holder.id}/stop`);
    const freedAt = Date.now();
    const shrunk = await post(`/vms/${holder.id}/resize`, { gpu_count: 7 });
    expect(shrunk.status).toBe(200);
    const firstDone = await eventuallyOp(first.headers.location);
    const waited = Date.now() - freedAt;
    expect(firstDone).toMatchObject({ status: 'succeeded' });
    expect((await get(`/vms/${first.body.id}`)).body).toMatchObject({ status: 'created', gpu_count: 1 });
    expect((await get(second.headers.location)).body).toMatchObject({ status: 'waiting_for_capacity', queue_position: 1 });
    process.stdout.write(`\nqueue hand-out: ${waited} ms from the resize's 200 to the waiting VM's created\n`);

    // A delete frees the holder's seven: the second waiter gets one at once; a DELETE cancels nothing left.
    const deletedAt = Date.now();
    expect((await request(server.url).delete(`/vms/${holder.id}`).set(bearer(token))).status).toBe(200);
    expect(await eventuallyOp(second.headers.location)).toMatchObject({ status: 'succeeded' });
    process.stdout.write(`queue hand-out: ${Date.now() - deletedAt} ms from the delete's 200 to the waiting VM's created\n`);
    expect((await get('/capacity')).body.queues).toEqual([]);
    for (const id of [first.body.id, second.body.id]) await request(server.url).delete(`/vms/${id}`).set(bearer(token)).expect(200);
  });

  async function eventuallyOp(location: string): Promise<{ action: string; status: string }> {
    for (let i = 0; i < 200; i++) {
      const op = (await get(location)).body;
      if (op.status === 'succeeded' || op.status === 'failed') return op;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`operation ${location} did not finish`);
  }
});
