import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { AuthenticationError, Client, HostUnreachableError } from '@vmplane/sdk';
import request from 'supertest';
import { ORIGINAL_VM, bearer, login } from '../support/api';
import { startWithHypervisor } from '../support/in-process-app';
import { ServerHandle, startServer } from '../support/server-process';
import { platformVmIdFromLabels } from '../../src/hypervisor/hypervisor.constants';

describe('when the hypervisor refuses every create (SDK_FAILURE_RATE=1, real server)', () => {
  let server: ServerHandle;
  let token: string;

  beforeAll(async () => {
    server = await startServer({ env: { SDK_FAILURE_RATE: '1', HYPERVISOR_MAX_ATTEMPTS: '3', HYPERVISOR_RETRY_BASE_MS: '20' } });
    token = await login(server.url);
  });
  afterAll(() => server?.stop());

  it('retries with backoff, then answers 503 insufficient_capacity with Retry-After and records why', async () => {
    const before = await request(server.url).get('/users/me').set(bearer(token));
    const response = await request(server.url).post('/vms').set(bearer(token)).send({ ...ORIGINAL_VM, gpu_count: 1 });
    expect(response.status).toBe(503);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
    expect(response.body).toMatchObject({ code: 'insufficient_capacity', detail: 'No resources available to create a new virtual machine' });

    const vmId = response.body.vm_id as string;
    const vm = await request(server.url).get(`/vms/${vmId}`).set(bearer(token));
    expect(vm.body.status).toBe('failed');
    expect(vm.body.status_reason).toMatch(/after 3 attempt\(s\): No resources available/);
    const ops = await request(server.url).get(`/vms/${vmId}/operations`).set(bearer(token));
    expect(ops.body.items).toEqual([
      expect.objectContaining({ action: 'create', status: 'failed', attempts: 3, error: { code: 'insufficient_capacity', message: expect.any(String) }, http_error_status_code: 503 }),
    ]);

    // Its resources went back: quota usage is unchanged and the public IP is free again.
    const after = await request(server.url).get('/users/me').set(bearer(token));
    expect(after.body.usage).toEqual(before.body.usage);
    const again = await request(server.url).post('/vms').set(bearer(token)).send(ORIGINAL_VM);
    expect(again.status).toBe(503);
    expect(again.body.code).toBe('insufficient_capacity');
  });
});

describe('hypervisor failure modes a real SDK does not produce (in-process, Client replaced)', () => {
  let app: NestFastifyApplication;
  let client: Client;
  let token: string;
  const server = () => app.getHttpServer();

  beforeAll(async () => {
    client = new Client('key', { failureRate: 0 });
    app = await startWithHypervisor(client, { HYPERVISOR_MAX_ATTEMPTS: '2' });
    const response = await request(server()).post('/token').type('form').send({ username: 'testuser', password: 'testpassword' });
    token = response.body.access_token;
  });
  afterAll(() => app?.close());
  afterEach(() => jest.restoreAllMocks());

  it('answers 502 for a thrown value that is not an Error, records it, and never leaks a stack', async () => {
    jest.spyOn(client, 'createVm').mockRejectedValue('segfault in hypervisor');
    const response = await request(server()).post('/vms').set(bearer(token)).send({ ...ORIGINAL_VM, public_ip: null });
    expect(response.status).toBe(502);
    expect(response.body).toMatchObject({ code: 'hypervisor_error', detail: 'non-Error value thrown: segfault in hypervisor' });
    expect(JSON.stringify(response.body)).not.toMatch(/\n\s+at |\.ts:\d+/);
    const ops = await request(server()).get(`/vms/${response.body.vm_id}/operations`).set(bearer(token));
    expect(ops.body.items[0]).toMatchObject({ status: 'failed', error: { code: 'hypervisor_error' } });
    // Non-Error values are not retried: they are not known to be transient.
    expect(client.createVm).toHaveBeenCalledTimes(1);
  });

  it('answers 502 for an ordinary Error', async () => {
    jest.spyOn(client, 'createVm').mockRejectedValue(new TypeError('boom'));
    const response = await request(server()).post('/vms').set(bearer(token)).send({ ...ORIGINAL_VM, public_ip: null });
    expect(response.status).toBe(502);
    expect(response.body.detail).toBe('TypeError: boom');
  });

  it('answers 503 hypervisor_unavailable on AuthenticationError, and /ready reports it', async () => {
    expect((await request(server()).get('/ready')).status).toBe(200);
    jest.spyOn(client, 'createVm').mockRejectedValue(new AuthenticationError('Not authenticated'));
    const response = await request(server()).post('/vms').set(bearer(token)).send({ ...ORIGINAL_VM, public_ip: null });
    expect(response.status).toBe(503);
    expect(response.body.code).toBe('hypervisor_unavailable');
    expect(response.headers['retry-after']).toBeDefined();
    const ready = await request(server()).get('/ready');
    expect(ready.status).toBe(503);
    expect(ready.body.checks).toEqual({ database: 'ok', hypervisor: 'not authenticated: Not authenticated' });
    expect((await request(server()).get('/health')).status).toBe(200);
  });

  it('answers 503 hypervisor_unavailable when the host does not answer, without naming it, and a retry with the same key runs afresh', async () => {
    const key = `unreachable-${Date.now()}`;
    const spy = jest
      .spyOn(client, 'createVm')
      .mockRejectedValue(new HostUnreachableError('h100-07', 'qemu+ssh://vmplane@10.1.2.3/system?keyfile=/etc/vmplane/id_ed25519', 'Connection refused'));
    const refused = await request(server()).post('/vms').set(bearer(token)).set('Idempotency-Key', key).send({ ...ORIGINAL_VM, public_ip: null });
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ code: 'hypervisor_unavailable', detail: 'The hypervisor host did not answer: Connection refused' });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    const ops = await request(server()).get(`/vms/${refused.body.vm_id}/operations`).set(bearer(token));
    expect(ops.body.items[0]).toMatchObject({ status: 'failed', error: { code: 'hypervisor_unavailable' } });
    expect(JSON.stringify([refused.body, ops.body])).not.toMatch(/h100-07|10\.1\.2\.3|keyfile|vmplane@/);
    spy.mockRestore();
    // The host is back: the same key is a new attempt, not a replay of the refusal.
    const retried = await request(server()).post('/vms').set(bearer(token)).set('Idempotency-Key', key).send({ ...ORIGINAL_VM, public_ip: null });
    expect(retried.status).toBe(201);
    expect(retried.headers['idempotent-replayed']).toBeUndefined();
    expect(retried.body.id).not.toBe(refused.body.vm_id);
  });

  it('a delete that never reaches the host (503) leaves a created VM as it was; deleting again later works', async () => {
    const created = await request(server()).post('/vms').set(bearer(token)).send({ ...ORIGINAL_VM, public_ip: null });
    expect(created.status).toBe(201);
    const spy = jest.spyOn(client, 'deleteVm').mockRejectedValue(new HostUnreachableError('h1', 'qemu+ssh://h1/system', 'Connection refused'));
    const refused = await request(server()).delete(`/vms/${created.body.id}`).set(bearer(token));
    expect(refused.status).toBe(503);
    expect(refused.body.code).toBe('hypervisor_unavailable');
    expect((await request(server()).get(`/vms/${created.body.id}`).set(bearer(token))).body).toMatchObject({ status: 'created', power_state: 'running', status_reason: null });
    spy.mockRestore();
    const deleted = await request(server()).delete(`/vms/${created.body.id}`).set(bearer(token));
    expect({ status: deleted.status, vm: deleted.body.status }).toEqual({ status: 200, vm: 'deleted' });
  });

  it.each([
    ['never reaches the host (503)', () => new HostUnreachableError('h1', 'qemu+ssh://h1/system', 'Connection refused'), 503, null],
    ['fails on the host (502)', () => new Error('disk busy'), 502, /^delete failed after 2 attempt\(s\)/],
  ])('a shelved VM whose delete %s stays shelved, and deleting it again removes its kept disk', async (_, failure, status, reason) => {
    const created = await request(server()).post('/vms').set(bearer(token)).send({ ...ORIGINAL_VM, public_ip: null });
    expect(created.status).toBe(201);
    const shelved = await request(server()).post(`/vms/${created.body.id}/shelve`).set(bearer(token));
    expect(shelved.body).toMatchObject({ status: 'shelved' });
    const failing = jest.spyOn(client, 'deleteVm').mockRejectedValue(failure());
    const refused = await request(server()).delete(`/vms/${created.body.id}`).set(bearer(token));
    expect(refused.status).toBe(status);
    expect((await request(server()).get(`/vms/${created.body.id}`).set(bearer(token))).body).toMatchObject({
      status: 'shelved',
      status_reason: reason ?? null,
    });
    failing.mockRestore();
    // Not a record-only delete of a "failed" VM: the host is asked again, so the kept disk goes.
    const deleting = jest.spyOn(client, 'deleteVm');
    const deleted = await request(server()).delete(`/vms/${created.body.id}`).set(bearer(token));
    expect({ status: deleted.status, vm: deleted.body.status }).toEqual({ status: 200, vm: 'deleted' });
    expect(deleting).toHaveBeenCalledTimes(1);
  });

  it('keeps a VM whose delete failed, marked failed and still holding its resources, and deletes it on retry', async () => {
    const created = await request(server()).post('/vms').set(bearer(token)).send({ ...ORIGINAL_VM, public_ip: '172.16.0.9' });
    expect(created.status).toBe(201);
    // The hypervisor keys VMs by its own ids; the platform's id is in the vmplane label it puts on each.
    const onHypervisor = async () => (await client.listVms()).filter((vm) => platformVmIdFromLabels(vm.labels) === created.body.id);
    expect(await onHypervisor()).toHaveLength(1);
    const spy = jest.spyOn(client, 'deleteVm').mockRejectedValue(new Error('hypervisor down'));
    const failed = await request(server()).delete(`/vms/${created.body.id}`).set(bearer(token));
    expect(failed.status).toBe(502);
    expect(spy).toHaveBeenCalledTimes(2);
    const vm = await request(server()).get(`/vms/${created.body.id}`).set(bearer(token));
    expect(vm.body).toMatchObject({ status: 'failed', status_reason: expect.stringMatching(/^delete failed/) });
    // Still on the hypervisor, so the IP stays taken.
    const clash = await request(server()).post('/vms').set(bearer(token)).send({ ...ORIGINAL_VM, public_ip: '172.16.0.9' });
    expect(clash.status).toBe(409);
    expect(await onHypervisor()).toHaveLength(1);
    spy.mockRestore();
    const retried = await request(server()).delete(`/vms/${created.body.id}`).set(bearer(token));
    expect(retried.status).toBe(200);
    expect(retried.body.status).toBe('deleted');
    expect(await onHypervisor()).toEqual([]);
  });
});
