import { readFileSync } from 'node:fs';
import request from 'supertest';
import { ORIGINAL_VM, bearer, login } from '../support/api';
import { ServerHandle, startServer } from '../support/server-process';

function sample(metrics: string, name: string, labels: Record<string, string>): number | null {
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const [series, value] = line.split(/ (?=[^ ]+$)/);
    const ok = Object.entries(labels).every(([k, v]) => series.includes(`${k}="${v}"`));
    if (ok) return Number(value);
  }
  return null;
}

describe('metrics and logs', () => {
  let server: ServerHandle;

  beforeAll(async () => {
    server = await startServer({ env: { LOG_LEVEL: 'info', SDK_FAILURE_RATE: '0' } });
  });
  afterAll(() => server?.stop());

  it('serves Prometheus metrics for HTTP, VMs, GPUs, the hypervisor, placement and the operation queue', async () => {
    const token = await login(server.url);
    const vm = await request(server.url).post('/vms').set(bearer(token)).send({ ...ORIGINAL_VM, gpu_count: 2, gpu_model: 'h100-80gb' });
    expect(vm.status).toBe(201);
    await request(server.url).get('/vms/01900000-0000-7000-8000-000000000000').set(bearer(token)).expect(404);

    const response = await request(server.url).get('/metrics');
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = response.text;
    expect(sample(text, 'vmplane_http_request_duration_seconds_count', { method: 'POST', route: '/vms', status: '201' })).toBe(1);
    expect(sample(text, 'vmplane_http_request_duration_seconds_count', { method: 'GET', route: '/vms/:id', status: '404' })).toBe(1);
    expect(sample(text, 'vmplane_http_request_duration_seconds_bucket', { route: '/vms', le: '+Inf' })).toBe(1);
    expect(sample(text, 'vmplane_vms', { status: 'created' })).toBe(1);
    expect(sample(text, 'vmplane_gpus', { model: 'h100-80gb', state: 'allocated' })).toBe(2);
    expect(sample(text, 'vmplane_gpus', { model: 'h100-80gb', state: 'free' })).toBe(14);
    expect(sample(text, 'vmplane_gpus', { model: 'l4-24gb', state: 'free' })).toBe(4);
    expect(sample(text, 'vmplane_hypervisor_call_duration_seconds_count', { call: 'create', outcome: 'ok' })).toBe(1);
    expect(sample(text, 'vmplane_operation_queue_depth', { status: 'pending' })).toBe(0);
    expect(sample(text, 'vmplane_operation_queue_depth', { status: 'running' })).toBe(0);
    expect(sample(text, 'vmplane_operation_queue_depth', { status: 'waiting_for_capacity' })).toBe(0);
    // The server's first plan read the fleet from the database, and its claim found nothing taken.
    expect(sample(text, 'vmplane_placement_duration_seconds_count', { outcome: 'placed', fleet: 'database' })).toBe(1);
    expect(text).toMatch(/^# TYPE vmplane_placement_conflicts_total counter$/m);
    expect(text).toMatch(/^vmplane_process_resident_memory_bytes \d+/m);
  });

  it('counts hypervisor errors by kind', async () => {
    const failing = await startServer({ env: { SDK_FAILURE_RATE: '1', HYPERVISOR_MAX_ATTEMPTS: '2', HYPERVISOR_RETRY_BASE_MS: '1' } });
    try {
      const token = await login(failing.url);
      await request(failing.url).post('/vms').set(bearer(token)).send(ORIGINAL_VM).expect(503);
      const text = (await request(failing.url).get('/metrics')).text;
      expect(sample(text, 'vmplane_hypervisor_errors_total', { call: 'create', kind: 'no_resources' })).toBe(2);
      expect(sample(text, 'vmplane_vms', { status: 'failed' })).toBe(1);
    } finally {
      await failing.stop();
    }
  });

  it('logs one JSON line per request, carrying the request id the client sent', async () => {
    await request(server.url).get('/health').set('X-Request-Id', 'trace-me-42').expect(200);
    await request(server.url).post('/token').type('form').send({ username: 'testuser', password: 'S3cret-never-logged' }).set('X-Request-Id', 'bad-login-7');
    await server.stop();
    const lines = readFileSync(server.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const health = lines.find((l) => l.reqId === 'trace-me-42');
    expect(health).toMatchObject({ level: 'info', msg: 'request', method: 'GET', route: '/health', status: 200, service: 'vmplane' });
    expect(typeof health!.time).toBe('string');
    expect(lines.find((l) => l.reqId === 'bad-login-7')).toMatchObject({ route: '/token', status: 401 });
    expect(readFileSync(server.logFile, 'utf8')).not.toContain('S3cret-never-logged');
    expect(lines.filter((l) => l.msg === 'request').every((l) => typeof l.reqId === 'string')).toBe(true);
  });
});
