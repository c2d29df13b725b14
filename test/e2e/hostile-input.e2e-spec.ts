/**
 * Issue 15: one request, signed in or not, must not take the server down.
 * Over-wide and over-deep bodies are refused before validation builds an
 * error per key; free text refuses terminal control characters; the
 * nvidia-smi import validates like POST /hosts; the sign-in endpoint is
 * rate-limited per client.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import request from 'supertest';
import { ORIGINAL_VM, bearer, login } from '../support/api';
import { ServerHandle, startServer } from '../support/server-process';

/** ~1 MB: 78,000 unknown keys, as in the report. */
const WIDE_KEYS = Array.from({ length: 78_000 }, (_, i) => `k-${String(i).padStart(6, '0')}`);
const WIDE_JSON = Buffer.from(`{${WIDE_KEYS.map((k) => `"${k}":1`).join(',')}}`);
const WIDE_FORM = Buffer.from(WIDE_KEYS.map((k) => `${k}=1`).join('&'));
const nested = (depth: number, leaf = '1') => '['.repeat(depth) + leaf + ']'.repeat(depth);

interface Answer {
  status: number;
  bytes: number;
  body: string;
}

async function post(url: string, path: string, contentType: string, body: string | Buffer, token?: string): Promise<Answer> {
  const response = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': contentType, ...(token ? bearer(token) : {}) },
    body,
    signal: AbortSignal.timeout(60_000),
  });
  const text = await response.text();
  return { status: response.status, bytes: Buffer.byteLength(text), body: text };
}

/**
 * GET /health every 10 ms from a process of its own, so that what it measures
 * is the server and not this process's own work of sending the flood.
 */
const PROBER = `
  const url = process.argv[1];
  (async () => {
    for (;;) {
      const started = performance.now();
      await (await fetch(url + '/health')).text();
      process.stdout.write((performance.now() - started).toFixed(1) + '\\n');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
`;

/** Keeps `count` requests in flight, `rounds` each, while /health is timed; returns the answers and the /health latencies. */
async function flood(url: string, count: number, rounds: number, send: () => Promise<Answer>): Promise<{ answers: Answer[]; health: number[] }> {
  const prober = spawn(process.execPath, ['-e', PROBER, url], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  prober.stdout!.on('data', (chunk) => (output += chunk));
  await new Promise((resolve) => setTimeout(resolve, 300));
  const before = output.split('\n').length - 1;
  const worker = async () => {
    const answers: Answer[] = [];
    for (let round = 0; round < rounds; round++) answers.push(await send());
    return answers;
  };
  const answers = (await Promise.all(Array.from({ length: count }, worker))).flat();
  const health = output.split('\n').slice(before, -1).map(Number);
  prober.kill();
  return { answers, health: health.sort((a, b) => a - b) };
}

const p99 = (sorted: number[]) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))];

describe('hostile input', () => {
  let server: ServerHandle;
  let member: string;
  let admin: string;

  beforeAll(async () => {
    // The heap npm start gives the server; a high sign-in rate so the floods reach the body checks.
    server = await startServer({ env: { NODE_OPTIONS: '--max-old-space-size=160 --max-semi-space-size=32', TOKEN_REQUESTS_PER_MINUTE: '100000' } });
    member = await login(server.url);
    admin = await login(server.url, 'admin', 'adminpassword');
  });
  afterAll(() => server?.stop());

  describe('32 concurrent ~1 MB bodies of 78,000 keys, 4 rounds', () => {
    it.each([
      ['POST /token, JSON', '/token', 'application/json', WIDE_JSON, false, 'has more than 256 keys'],
      ['POST /token, form', '/token', 'application/x-www-form-urlencoded', WIDE_FORM, false, 'has more than 256 fields'],
      ['POST /vms signed in, JSON', '/vms', 'application/json', WIDE_JSON, true, 'has more than 256 keys'],
    ])('%s: every answer a small 400, /health p99 under 1 s, the server up', async (_name, path, type, body, signedIn, message) => {
      expect(body.length).toBeGreaterThan(850_000);
      const { answers, health } = await flood(server.url, 32, 4, () => post(server.url, path, type, body, signedIn ? member : undefined));
      expect(answers).toHaveLength(128);
      for (const answer of answers) {
        expect(answer.status).toBe(400);
        expect(answer.bytes).toBeLessThan(16 * 1024);
        expect(JSON.parse(answer.body).errors).toEqual([{ field: 'body', message }]);
      }
      process.stdout.write(`${_name}: /health during the flood: ${health.length} samples, p50 ${health[health.length >> 1].toFixed(1)} ms, p99 ${p99(health).toFixed(1)} ms, max ${health[health.length - 1].toFixed(1)} ms\n`);
      expect(health.length).toBeGreaterThan(0);
      expect(p99(health)).toBeLessThan(1000);
      expect(server.process.exitCode).toBeNull();
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
    });
  });

  it('lists at most 10 field errors and counts the rest', async () => {
    const body = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`x${i}`, 1]));
    const response = await request(server.url).post('/token').send(body);
    expect(response.status).toBe(400);
    expect(response.body.errors).toHaveLength(10);
    expect(response.body.more_errors).toBe(192); // 200 unknown keys + username and password missing
    expect(response.body.detail).toMatch(/; and 192 more$/);
  });

  it('answers 400 to JSON nested 1,500 deep wherever it is, and 5,000-deep labels, never a stack overflow', async () => {
    const bodies = [
      nested(1500),
      `{"username":${nested(1500)},"password":"x"}`,
      `{"zz":${nested(1500)}}`,
      '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000),
    ];
    for (const body of bodies) {
      const answer = await post(server.url, '/token', 'application/json', body);
      expect(answer.status).toBe(400);
      expect(JSON.parse(answer.body).errors[0].message).toBe('nests deeper than 8 levels of objects and arrays');
    }
    const labels = await post(server.url, '/vms', 'application/json', JSON.stringify({ ...ORIGINAL_VM, labels: '@' }).replace('"@"', nested(5000, '"x"')), member);
    expect(labels.status).toBe(400);
    expect(JSON.parse(labels.body).errors).toEqual([{ field: 'labels[0][0][0][0][0][0][0]', message: 'nests deeper than 8 levels of objects and arrays' }]);
    expect(readFileSync(server.logFile, 'utf8')).not.toContain('RangeError');
  });

  it('refuses a query string of more than 256 parameters', async () => {
    const query = Array.from({ length: 300 }, (_, i) => `q${i}=1`).join('&');
    const response = await request(server.url).get(`/vms?${query}`).set(bearer(member));
    expect(response.status).toBe(400);
    expect(response.body.errors).toEqual([{ field: 'query', message: 'has more than 256 parameters' }]);
  });

  describe('terminal control characters', () => {
    const refusal = 'must not contain control characters (U+0000–U+001F, U+007F–U+009F)';

    it.each([
      ['ESC sequences and BEL', '\u001b]0;pwned\u0007\u001b[2J\u001b[31mRED'],
      ['a C1 CSI', 'a\u009bb'],
      ['DEL', 'a\u007f'],
      ['a newline', 'a\nb'],
      ['NUL', 'a\u0000b'],
    ])('a label with %s is a 400 naming labels', async (_name, label) => {
      const response = await request(server.url).post('/vms').set(bearer(member)).send({ ...ORIGINAL_VM, name: 'escape', labels: ['ok', label] });
      expect(response.status).toBe(400);
      expect(response.body.errors).toEqual([{ field: 'labels', message: refusal }]);
    });

    it('refuses them in the label filter, GPU product names and uuids; plain Unicode is fine', async () => {
      const filter = await request(server.url).get('/vms').query({ label: 'a\u001bb' }).set(bearer(member));
      expect(filter.status).toBe(400);
      expect(filter.body.errors).toEqual([{ field: 'label', message: refusal }]);

      const gpu = { product_name: 'NVIDIA \u001b[2J H100', memory_mib: 81559, pci_address: '00000000:18:00.0', uuid: 'GPU-\u0085x' };
      const host = await request(server.url).post('/hosts').set(bearer(admin)).send({ name: 'esc-host', region: 'us-east-1', cpu_cores: 8, memory_mib: 8192, disk_gib: 100, gpus: [gpu] });
      expect(host.status).toBe(400);
      expect(host.body.errors).toEqual([
        { field: 'gpus.0.product_name', message: refusal },
        { field: 'gpus.0.uuid', message: refusal },
      ]);

      const unicode = await request(server.url).post('/vms').set(bearer(member)).send({ ...ORIGINAL_VM, name: 'unicode', public_ip: null, labels: ['équipe-α', '研究'] });
      expect(unicode.status).toBe(201);
    });
  });

  describe('POST /hosts/import validates like POST /hosts', () => {
    const gpuXml = (i: number, { pci = `00000000:${(i % 256).toString(16).padStart(2, '0')}:00.0`, uuid = `GPU-import-${i}`, name = 'NVIDIA H100 80GB HBM3' } = {}) =>
      `<gpu><product_name>${name}</product_name><uuid>${uuid}</uuid><pci><pci_bus_id>${pci}</pci_bus_id></pci><fb_memory_usage><total>81559 MiB</total></fb_memory_usage></gpu>`;
    const xml = (gpus: string[]) => `<?xml version="1.0"?><nvidia_smi_log>${gpus.join('')}</nvidia_smi_log>`;
    const importXml = (name: string, body: string) =>
      request(server.url).post(`/hosts/import?name=${name}&cpu_cores=8&memory_mib=8192&disk_gib=100`).set(bearer(admin)).set('Content-Type', 'application/xml').send(body);

    it.each([
      ['a PCI address of not-a-pci-id', xml([gpuXml(0, { pci: 'not-a-pci-id' })]), { field: 'gpus.0.pci_address', message: 'must be a PCI bus id like 00000000:18:00.0' }],
      ['65 GPUs', xml(Array.from({ length: 65 }, (_, i) => gpuXml(i))), { field: 'gpus', message: 'must contain no more than 64 elements' }],
      ['1,000 GPUs', xml(Array.from({ length: 1000 }, (_, i) => gpuXml(i))), { field: 'gpus', message: 'must contain no more than 64 elements' }],
      ['a 500 KB uuid', xml([gpuXml(0, { uuid: 'G'.repeat(500_000) })]), { field: 'gpus.0.uuid', message: 'must be shorter than or equal to 64 characters' }],
      ['a 900 KB product name', xml([gpuXml(0, { name: 'N'.repeat(900_000) })]), { field: 'gpus.0.product_name', message: 'must be shorter than or equal to 128 characters' }],
      ['a control character in the product name', xml([gpuXml(0, { name: 'NVIDIA \u001b[2J H100' })]), { field: 'gpus.0.product_name', message: 'must not contain control characters (U+0000–U+001F, U+007F–U+009F)' }],
      ['elements nested 500 deep', xml([`<gpu>${'<x>'.repeat(500)}${'</x>'.repeat(500)}</gpu>`]), { field: 'body', message: 'nvidia-smi XML could not be parsed: Maximum nested tags exceeded' }],
    ])('%s is a 400 and registers nothing', async (_name, body, error) => {
      const before = (await request(server.url).get('/hosts').set(bearer(admin))).body.items.length;
      const response = await importXml('import-refused', body);
      expect(response.status).toBe(400);
      expect(response.body.errors[0]).toEqual(error);
      expect(JSON.stringify(response.body).length).toBeLessThan(16 * 1024);
      expect((await request(server.url).get('/hosts').set(bearer(admin))).body.items.length).toBe(before);
    });
  });
});

describe('POST /token per client', () => {
  let server: ServerHandle;

  beforeAll(async () => {
    server = await startServer({ env: { TOKEN_REQUESTS_PER_MINUTE: '5', LOGIN_MAX_FAILURES: '3', TRUST_PROXY: '127.0.0.1' } });
  });
  afterAll(() => server?.stop());

  const attempt = (client: string, username: string, password: string) =>
    request(server.url).post('/token').set('X-Forwarded-For', client).type('form').send({ username, password });

  it('answers 429 with Retry-After once a client has spent its attempts; other clients and the lockout are unaffected', async () => {
    for (let i = 0; i < 3; i++) expect((await attempt('192.0.2.1', 'testuser', 'wrong')).status).toBe(401);
    expect((await attempt('192.0.2.1', 'made-up-1', 'x')).status).toBe(401);
    expect((await attempt('192.0.2.1', 'made-up-2', 'x')).status).toBe(401);
    const limited = await attempt('192.0.2.1', 'made-up-3', 'x');
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({ code: 'too_many_requests' });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(12);

    // Another client is not limited, but testuser's lock (3 failures) still holds for everyone.
    const other = await attempt('192.0.2.2', 'testuser', 'testpassword');
    expect(other.status).toBe(429);
    expect(other.body.code).toBe('too_many_login_attempts');
    for (let i = 0; i < 4; i++) expect((await attempt('192.0.2.3', `flood-${i}`, 'x')).status).toBe(401);
    expect((await attempt('192.0.2.4', 'testuser', 'testpassword')).body.code).toBe('too_many_login_attempts');
    expect((await attempt('192.0.2.4', 'admin', 'adminpassword')).status).toBe(200);
  });
});
