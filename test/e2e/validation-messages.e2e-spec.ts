/**
 * Issue 12: a wrong type is answered with the type, whatever range or length
 * checks the field also has (class-validator used to report the last
 * decorator declared: "cpu_cores": "2" said "must not be greater than 256").
 * Each row: a JSON body route, a field, a wrong value, the exact message.
 */
import request from 'supertest';
import { ORIGINAL_VM, bearer, login } from '../support/api';
import { ServerHandle, startServer } from '../support/server-process';

const INTEGER = 'must be an integer';
const STRING = 'must be a string';
const ARRAY = 'must be an array';
const NOT_INTEGERS: unknown[] = ['2', 'abc', null, true, 1.5, [], {}];
const NOT_STRINGS: unknown[] = [42, true, [], {}];

type Row = [field: string, value: unknown, message: string];
const rows = (field: string, values: unknown[], message: string): Row[] => values.map((value) => [field, value, message]);

const VM_ROWS: Row[] = [
  ...rows('name', [...NOT_STRINGS, null], STRING),
  ...rows('cpu_cores', NOT_INTEGERS, INTEGER),
  ...rows('memory', NOT_INTEGERS, INTEGER),
  ...rows('disk_size', NOT_INTEGERS, INTEGER),
  ...rows('public_ip', NOT_STRINGS, STRING),
  ['public_ip', '1.2.3', 'must be a valid IPv4 or IPv6 address'],
  ...rows('labels', ['test', { a: 1 }, 42, true], ARRAY),
  ...rows('labels', [[1], [true], [null], [['x']], [{}]], 'each value must be a string'),
  ['labels', Array(33).fill('x'), 'must contain no more than 32 elements'],
  ['labels', ['x'.repeat(64)], 'each value must be shorter than or equal to 63 characters'],
  ...rows('gpu_count', NOT_INTEGERS.filter((v) => v !== null), INTEGER),
  ['gpu_count', 9, 'must not be greater than 8'],
  ...rows('gpu_model', NOT_STRINGS, STRING),
  ...rows('region', NOT_STRINGS, STRING),
];

const HOST = { name: 'typed-host', region: 'us-east-1', cpu_cores: 8, memory_mib: 8192, disk_gib: 100 };
const GPU = { product_name: 'NVIDIA H100 80GB HBM3', memory_mib: 81559, pci_address: '00000000:18:00.0', uuid: 'GPU-typed-1' };

const HOST_ROWS: Row[] = [
  ...rows('name', NOT_STRINGS, STRING),
  ...rows('region', NOT_STRINGS, STRING),
  ...rows('cpu_cores', NOT_INTEGERS, INTEGER),
  ...rows('memory_mib', NOT_INTEGERS, INTEGER),
  ...rows('disk_gib', NOT_INTEGERS, INTEGER),
  ['state', 42, 'must be one of the following values: active, draining, down'],
  ...rows('gpus', ['x', 42, { a: 1 }], ARRAY),
  ['gpus', [1], 'must be an object'],
];

const GPU_ROWS: Row[] = [
  ...rows('index', NOT_INTEGERS.filter((v) => v !== null), INTEGER),
  ...rows('product_name', NOT_STRINGS, STRING),
  ...rows('memory_mib', NOT_INTEGERS, INTEGER),
  ...rows('pci_address', NOT_STRINGS, STRING),
  ...rows('uuid', NOT_STRINGS, STRING),
  ...rows('model', NOT_STRINGS, STRING),
  ['mig_mode', 42, 'must be one of the following values: enabled, disabled, unsupported'],
];

const NOT_NULL = 'must not be null';

/** PATCH /hosts/{id}: each field may be left out, never sent as null. */
const HOST_UPDATE_ROWS: Row[] = [
  ...rows('name', NOT_STRINGS, STRING),
  ['name', null, NOT_NULL],
  ...rows('labels', ['rack', { a: 1 }, 42, true], ARRAY),
  ['labels', null, NOT_NULL],
  ...rows('labels', [[1], [true], [null], [{}]], 'each value must be a string'),
  ...rows('state', [42, 'removed', true], 'must be one of the following values: active, draining, down'),
  ['state', null, NOT_NULL],
];

/** PATCH /users/{id}: the same. */
const USER_UPDATE_ROWS: Row[] = [
  ['role', 42, 'must be one of the following values: member, admin'],
  ['role', null, NOT_NULL],
  ...rows('disabled', [42, 'yes', [], {}], 'must be a boolean value'),
  ['disabled', null, NOT_NULL],
  ...rows('password', NOT_STRINGS, STRING),
  ['password', null, NOT_NULL],
];

const USER_ROWS: Row[] = [
  ...rows('username', [...NOT_STRINGS, null], STRING),
  ...rows('password', [...NOT_STRINGS, null], STRING),
  ['role', 42, 'must be one of the following values: member, admin'],
];

const QUOTA_ROWS: Row[] = (['vcpus', 'memory_mib', 'gpus', 'vms'] as const).flatMap((field) => rows(field, NOT_INTEGERS.filter((v) => v !== null), INTEGER));

const TOKEN_ROWS: Row[] = [
  ...rows('username', [...NOT_STRINGS, null], STRING),
  ...rows('password', [...NOT_STRINGS, null], STRING),
  ['grant_type', 42, 'must be one of the following values: password'],
  ...rows('scope', NOT_STRINGS, STRING),
  ...rows('client_id', NOT_STRINGS, STRING),
  ...rows('client_secret', NOT_STRINGS, STRING),
];

const show = (value: unknown) => (Array.isArray(value) && value.length > 3 ? `[${value.length} items]` : JSON.stringify(value)?.slice(0, 30));

describe('validation messages', () => {
  let server: ServerHandle;
  let member: string;
  let admin: string;
  let memberId: string;

  beforeAll(async () => {
    server = await startServer({ env: { TOKEN_REQUESTS_PER_MINUTE: '100000' } });
    member = await login(server.url);
    admin = await login(server.url, 'admin', 'adminpassword');
    memberId = (await request(server.url).get('/users/me').set(bearer(member))).body.id;
  });
  afterAll(() => server?.stop());

  const expectOnly = (response: request.Response, field: string, message: string) => {
    expect({ status: response.status, errors: response.body.errors }).toEqual({ status: 400, errors: [{ field, message }] });
  };

  it.each(VM_ROWS.map(([f, v, m]) => [f, show(v), v, m]))('POST /vms %s = %s → "%s"', async (field, _shown, value, message) => {
    expectOnly(await request(server.url).post('/vms').set(bearer(member)).send({ ...ORIGINAL_VM, [field as string]: value }), field as string, message as string);
  });

  it.each(HOST_ROWS.map(([f, v, m]) => [f, show(v), v, m]))('POST /hosts %s = %s', async (field, _shown, value, message) => {
    const response = await request(server.url).post('/hosts').set(bearer(admin)).send({ ...HOST, [field as string]: value });
    expectOnly(response, field === 'gpus' && Array.isArray(value) ? 'gpus.0' : (field as string), message as string);
  });

  it.each(GPU_ROWS.map(([f, v, m]) => [f, show(v), v, m]))('POST /hosts gpus.0.%s = %s', async (field, _shown, value, message) => {
    const response = await request(server.url).post('/hosts').set(bearer(admin)).send({ ...HOST, gpus: [{ ...GPU, [field as string]: value }] });
    expectOnly(response, `gpus.0.${field}`, message as string);
  });

  it.each(USER_ROWS.map(([f, v, m]) => [f, show(v), v, m]))('POST /users %s = %s', async (field, _shown, value, message) => {
    const response = await request(server.url).post('/users').set(bearer(admin)).send({ username: 'typed-user', password: 'long-enough-password', role: 'member', [field as string]: value });
    expectOnly(response, field as string, message as string);
  });

  it.each(QUOTA_ROWS.map(([f, v, m]) => [f, show(v), v, m]))('PUT /users/{id}/quota %s = %s', async (field, _shown, value, message) => {
    expectOnly(await request(server.url).put(`/users/${memberId}/quota`).set(bearer(admin)).send({ [field as string]: value }), field as string, message as string);
  });

  it('PATCH /hosts/{id} state of the wrong type', async () => {
    const host = (await request(server.url).get('/hosts').set(bearer(admin))).body.items[0].id;
    expectOnly(await request(server.url).patch(`/hosts/${host}`).set(bearer(admin)).send({ state: 7 }), 'state', 'must be one of the following values: active, draining, down');
  });

  it.each(HOST_UPDATE_ROWS.map(([f, v, m]) => [f, show(v), v, m]))('PATCH /hosts/{id} %s = %s → "%s"', async (field, _shown, value, message) => {
    const host = (await request(server.url).get('/hosts').set(bearer(admin))).body.items[0].id;
    expectOnly(await request(server.url).patch(`/hosts/${host}`).set(bearer(admin)).send({ [field as string]: value }), field as string, message as string);
  });

  it.each(USER_UPDATE_ROWS.map(([f, v, m]) => [f, show(v), v, m]))('PATCH /users/{id} %s = %s → "%s"', async (field, _shown, value, message) => {
    expectOnly(await request(server.url).patch(`/users/${memberId}`).set(bearer(admin)).send({ [field as string]: value }), field as string, message as string);
  });

  it.each(TOKEN_ROWS.map(([f, v, m]) => [f, show(v), v, m]))('POST /token (JSON) %s = %s', async (field, _shown, value, message) => {
    expectOnly(await request(server.url).post('/token').send({ username: 'testuser', password: 'testpassword', [field as string]: value }), field as string, message as string);
  });

  it('query parameters of the wrong type name the type', async () => {
    expectOnly(await request(server.url).get('/vms?limit=abc').set(bearer(member)), 'limit', INTEGER);
    expectOnly(await request(server.url).get('/vms?limit=1.5').set(bearer(member)), 'limit', INTEGER);
    expectOnly(await request(server.url).get('/vms?limit=500').set(bearer(member)), 'limit', 'must not be greater than 200');
  });

  describe('media types', () => {
    it('a form body to a JSON route is a 415 naming application/json', async () => {
      const response = await request(server.url).post('/vms').set(bearer(member)).type('form').send({ name: 'x', cpu_cores: '2', memory: '4096', disk_size: '50' });
      expect(response.status).toBe(415);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body).toMatchObject({
        code: 'unsupported_media_type',
        detail: 'POST /vms takes application/json, not application/x-www-form-urlencoded',
        accepted: ['application/json'],
      });
    });

    it.each([
      ['POST', '/users', 'text/plain'],
      ['PUT', '/users/{id}/quota', 'application/xml'],
      ['POST', '/hosts', 'application/x-www-form-urlencoded'],
      ['POST', '/vms', 'application/octet-stream'],
    ])('%s %s with %s is a 415', async (method, path, type) => {
      const url = path.replace('{id}', memberId);
      const response = await request(server.url)[method.toLowerCase() as 'post' | 'put'](url).set(bearer(admin)).set('Content-Type', type).send('x=1');
      expect(response.status).toBe(415);
      expect(response.body.accepted).toEqual(['application/json']);
    });

    it('POST /token still takes a form and JSON, and nothing else', async () => {
      expect((await request(server.url).post('/token').type('form').send({ username: 'testuser', password: 'testpassword' })).status).toBe(200);
      expect((await request(server.url).post('/token').send({ username: 'testuser', password: 'testpassword' })).status).toBe(200);
      const text = await request(server.url).post('/token').set('Content-Type', 'text/plain').send('username=testuser&password=testpassword');
      expect(text.status).toBe(415);
      expect(text.body.accepted).toEqual(expect.arrayContaining(['application/x-www-form-urlencoded', 'application/json']));
    });

    it('JSON sent as a form (curl -d without a Content-Type) says so, instead of naming the JSON as a field', async () => {
      const response = await request(server.url).post('/token').type('form').send(JSON.stringify({ username: 'testuser', password: 'testpassword' }));
      expect(response.status).toBe(400);
      expect(response.body.errors).toEqual([{ field: 'body', message: 'is JSON, but Content-Type says a form (as `curl -d` sends): add -H "Content-Type: application/json"' }]);
    });

    it.each([
      ['cut short', '{"name":', /^is not valid JSON: /],
      ['a __proto__ key', '{"name":"a","__proto__":{"admin":true}}', /^must not have a key named __proto__/],
      ['a constructor.prototype key', '{"name":"a","constructor":{"prototype":{"admin":true}}}', /^must not have a key named __proto__, or constructor with a prototype$/],
    ])('a JSON body %s is a 400 that says what is wrong with it', async (_case, body, message) => {
      const response = await request(server.url).post('/vms').set(bearer(member)).set('Content-Type', 'application/json').send(body);
      expect(response.status).toBe(400);
      expect(response.body.errors).toEqual([{ field: 'body', message: expect.stringMatching(message) }]);
    });

    it.each([
      ['empty', ''],
      ['only whitespace', ' \r\n\t'],
    ])('a JSON body that is %s counts as no body: a route that needs one names its required fields', async (_case, body) => {
      const response = await request(server.url).post('/vms').set(bearer(member)).set('Content-Type', 'application/json').send(body);
      expect(response.status).toBe(400);
      expect(response.body.errors).toEqual(
        expect.arrayContaining(['name', 'cpu_cores', 'memory', 'disk_size'].map((field) => ({ field, message: 'is required' }))),
      );
    });

    it('a body-less DELETE or action with Content-Type: application/json (as many clients send on every request) is served', async () => {
      const json = { 'Content-Type': 'application/json' };
      const created = await request(server.url).post('/vms').set(bearer(member)).send({ ...ORIGINAL_VM, name: 'json-header-delete', public_ip: undefined });
      expect(created.status).toBe(201);
      const stopped = await request(server.url).post(`/vms/${created.body.id}/stop`).set(bearer(member)).set(json);
      expect(stopped.status).toBe(200);
      expect(stopped.body.power_state).toBe('shut_off');
      const deleted = await request(server.url).delete(`/vms/${created.body.id}`).set(bearer(member)).set(json);
      expect(deleted.status).toBe(200);
      expect(deleted.body.status).toBe('deleted');
    });

    it('POST /hosts/import takes application/xml only', async () => {
      const response = await request(server.url).post('/hosts/import?name=x&cpu_cores=1&memory_mib=256&disk_gib=1').set(bearer(admin)).send({ xml: '<x/>' });
      expect(response.status).toBe(415);
      expect(response.body.accepted).toEqual(['application/xml']);
    });
  });
});
