/**
 * `npm run bench:api [-- --db postgres] [-- --duration 8 --repeats 3 --warmup 3 --connections 16,64 --scenarios pairs,tenants,get,list,scaling]`
 *
 * Only a run with the default duration, repeats, warm-up, connections and scenarios
 * rewrites its section of docs/benchmarks.md. BENCH_SERVER_NODE_FLAGS adds
 * node flags to the server it starts (e.g. `--cpu-prof --cpu-prof-dir=DIR`).
 *
 * Starts vmplane (the real server, as a child process) and a minimal baseline
 * server (bench/baseline-server.ts: Fastify + jsonwebtoken + better-sqlite3 or
 * pg, no framework) side by side, drives both with autocannon at 16 and 64
 * connections, alternating between them, and reports throughput, p50/p99 and
 * vmplane's peak RSS, with the ratio to the baseline. Every response's status
 * is checked; the run fails if any request got a status it should not.
 *
 * Scenarios: `pairs` (one user creates and deletes CPU-only VMs), `tenants`
 * (16 users, each connection one of them, creating and deleting VMs spread
 * over the demo fleet's GPU models and CPU hosts, as a shared cluster is
 * used), `get`, `list` (a page of 50 out of 10,000 VMs), `scaling` (1,000 to
 * 100,000 VMs).
 */
import autocannon from 'autocannon';
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { UuidV7Generator } from '../src/common/id-generator';
import { projectRoot } from '../src/common/project-root';
import { Child, RssSampler, cpuMs, freePort, median, startChild, writeMarkdownSection } from './bench-support';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
const DB = args.get('db') ?? 'sqlite';
const DURATION = Number(args.get('duration') ?? 8);
/** Seconds of each scenario both servers run once, unrecorded, before the first measurement (JIT, caches, heap sizing). */
const WARMUP = Number(args.get('warmup') ?? 3);
let cannonDuration = DURATION;
const REPEATS = Number(args.get('repeats') ?? 3);
const CONNECTIONS = (args.get('connections') ?? '16,64').split(',').map(Number);
/** `--scenarios pairs,get` runs a subset for a quick look; only a full run rewrites docs/benchmarks.md. */
const ALL_SCENARIOS = ['pairs', 'tenants', 'get', 'list', 'scaling'];
const TENANTS = 16;
/** What the tenants ask for, one shape per connection in turn: one GPU of each demo model, or no GPU. */
const TENANT_SHAPES = [
  { gpu_count: 1, gpu_model: 'h100-80gb' },
  { gpu_count: 1, gpu_model: 'a100-80gb' },
  { gpu_count: 1, gpu_model: 'l40s-48gb' },
  { gpu_count: 1, gpu_model: 'l4-24gb' },
  {},
];
const SCENARIOS = new Set((args.get('scenarios') ?? ALL_SCENARIOS.join(',')).split(','));
const FULL_RUN = ALL_SCENARIOS.every((s) => SCENARIOS.has(s)) && ['duration', 'repeats', 'connections', 'warmup'].every((k) => !args.has(k));
const SECRET = 'bench-secret-bench-secret-bench-secret';
const ROOT = projectRoot(__dirname);
/** The node flags and environment settings `npm run start:prod` uses (package.json), so the benchmark measures the same process. */
const START_PROD: string = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['start:prod'];
const SERVER_NODE_FLAGS: string[] = START_PROD.match(/--[\w-]+=\S+/g) ?? [];
const SERVER_ENV: Record<string, string> = Object.fromEntries([...START_PROD.matchAll(/(?:^|\s)([A-Z_]+)=(\S+)/g)].map((m) => [m[1], m[2]]));
const ADMIN_PG = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

interface Measurement {
  rps: number;
  p50: number;
  p99: number;
  unexpected: number;
  /** What the unexpected answers were: `POST 503`, `errors`, `timeouts` → how many. */
  seen: Record<string, number>;
  rssKb: number;
  /** Requests answered in the run (autocannon's total). */
  requests: number;
  /** The server's CPU time per request over the run, in µs. */
  cpuUsPerRequest: number;
}

/** Counts a response with a status the scenario did not expect, by method and status. */
interface Tally {
  unexpected: number;
  seen: Record<string, number>;
}

function newTally(): Tally {
  return { unexpected: 0, seen: {} };
}

function miss(count: Tally, what: string): void {
  count.unexpected++;
  count.seen[what] = (count.seen[what] ?? 0) + 1;
}

/** ` code` of a problem+json body, or nothing. */
function problemCode(body: string | undefined): string {
  try {
    const code = (JSON.parse(body ?? '') as { code?: unknown }).code;
    return typeof code === 'string' ? ` ${code}` : '';
  } catch {
    return '';
  }
}

function describeSeen(seen: Record<string, number>): string {
  const parts = Object.entries(seen).sort((a, b) => b[1] - a[1]).map(([what, n]) => `${n} × ${what}`);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

interface Target {
  name: 'vmplane' | 'baseline';
  child: Child;
  token: string;
  vmId: string;
  listToken: Record<number, string>;
  tenantTokens: string[];
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vmplane-bench-'));
  const fleetFile = join(dir, 'fleet.json');
  // Four large CPU hosts for the one-user scenarios, plus the demo fleet for the tenants.
  const demoFleet = JSON.parse(readFileSync(join(ROOT, 'fleet', 'demo-fleet.json'), 'utf8')) as { hosts: unknown[] };
  writeFileSync(
    fleetFile,
    JSON.stringify({
      hosts: [
        ...Array.from({ length: 4 }, (_, i) => ({
          name: `bench-cpu-${i}`,
          region: 'bench',
          cpu_cores: 100_000,
          memory_mib: 2_000_000_000,
          disk_gib: 100_000_000,
          gpus: [],
        })),
        ...demoFleet.hosts,
      ],
    }),
  );
  const databases = await prepareDatabases(dir);
  const common = { PATH: process.env.PATH, HOME: process.env.HOME, JWT_SECRET: SECRET };
  const vmplanePort = await freePort();
  const vmplane = await startChild(
    join(ROOT, 'dist', 'src', 'main.js'),
    {
      ...common,
      ...SERVER_ENV,
      VMPLANE_DEMO: '1',
      SDK_API_KEY: 'bench',
      SDK_LATENCY_MS: '0',
      SDK_FAILURE_RATE: '0',
      SDK_STATE_PATH: join(dir, 'hypervisor.sqlite'),
      DATABASE_URL: databases.vmplane,
      FLEET_FILE: fleetFile,
      QUOTA_VMS: '10000000',
      QUOTA_VCPUS: '10000000',
      QUOTA_MEMORY_MIB: '2000000000',
      RECONCILE_INTERVAL_MS: '0',
    },
    vmplanePort,
    join(dir, 'vmplane.log'),
    // BENCH_SERVER_NODE_FLAGS adds flags for a look inside, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    [...SERVER_NODE_FLAGS, ...(process.env.BENCH_SERVER_NODE_FLAGS?.split(' ').filter(Boolean) ?? [])],
  );
  const baseline = await startChild(
    join(ROOT, 'dist', 'bench', 'baseline-server.js'),
    { ...common, DATABASE_URL: databases.baseline },
    await freePort(),
    join(dir, 'baseline.log'),
  );

  try {
    const token = await login(vmplane.url, 'testuser', 'testpassword');
    const tenantTokens = SCENARIOS.has('tenants') ? await createTenants(vmplane.url) : [];
    const targets: Target[] = [
      { name: 'vmplane', child: vmplane, token, vmId: await createVm(vmplane.url, token), listToken: {}, tenantTokens },
      { name: 'baseline', child: baseline, token, vmId: await createVm(baseline.url, token), listToken: {}, tenantTokens },
    ];
    const listSizes = [1_000, 10_000, 100_000];
    if (SCENARIOS.has('list') || SCENARIOS.has('scaling')) for (const size of listSizes) await seedLister(vmplane.url, targets, size, databases);

    const rows: string[] = [];
    const failures: string[] = [];
    const record = (scenario: string, connections: number, v: Measurement, b: Measurement, unit = 'req/s', divisor = 1) => {
      rows.push(
        `| ${scenario} | ${connections} | ${fmt(v.rps / divisor)} ${unit} | ${fmt(v.p50)} / ${fmt(v.p99)} ms | ${fmt(b.rps / divisor)} ${unit} | ${fmt(b.p50)} / ${fmt(b.p99)} ms | **${pct(v.rps / b.rps)}** | **${fmt(v.p99 / b.p99, 2)}×** | ${cpuCell(v, b, divisor)} | ${Math.round(v.rssKb / 1024)} MB |`,
      );
      if (v.unexpected + b.unexpected > 0) failures.push(`${scenario} @${connections}: ${v.unexpected} vmplane${describeSeen(v.seen)} and ${b.unexpected} baseline${describeSeen(b.seen)} responses with an unexpected status`);
    };
    const rssRuns: number[] = [];
    if (WARMUP > 0) {
      cannonDuration = WARMUP;
      for (const t of targets) {
        const warm: Measurement[] = [];
        if (SCENARIOS.has('pairs')) warm.push(await createDeletePairs(t, CONNECTIONS[0]));
        if (SCENARIOS.has('tenants')) warm.push(await tenantRun(t));
        if (SCENARIOS.has('get')) warm.push(await getOne(t, CONNECTIONS[0]));
        if (SCENARIOS.has('list') || SCENARIOS.has('scaling')) warm.push(await listPage(t, CONNECTIONS[0], 10_000));
        const unexpected = warm.reduce((n, m) => n + m.unexpected, 0);
        if (unexpected > 0) throw new Error(`warm-up: ${unexpected} responses from ${t.name} with an unexpected status`);
      }
      cannonDuration = DURATION;
    }

    for (const connections of CONNECTIONS) {
      if (SCENARIOS.has('pairs')) {
        const pairs = await alternate(targets, (t) => createDeletePairs(t, connections), rssRuns);
        record('POST /vms + DELETE (pairs)', connections, pairs.vmplane, pairs.baseline, 'pairs/s', 2);
      }
      if (SCENARIOS.has('tenants') && connections === CONNECTIONS[0]) {
        const pairs = await alternate(targets, tenantRun, rssRuns);
        record(`POST /vms + DELETE, ${TENANTS} users over the demo fleet's GPU models and CPU hosts`, TENANTS, pairs.vmplane, pairs.baseline, 'pairs/s', 2);
      }
      if (SCENARIOS.has('get')) {
        const get = await alternate(targets, (t) => getOne(t, connections), rssRuns);
        record('GET /vms/{id}', connections, get.vmplane, get.baseline);
      }
      if (SCENARIOS.has('list')) {
        const list = await alternate(targets, (t) => listPage(t, connections, 10_000), rssRuns);
        record('GET /vms?limit=50 (10,000 VMs)', connections, list.vmplane, list.baseline);
      }
    }
    const scaling: string[] = [];
    for (const size of SCENARIOS.has('scaling') ? listSizes : []) {
      const m = await alternate(targets, (t) => listPage(t, 16, size), rssRuns);
      scaling.push(`| ${size.toLocaleString('en-US')} | ${fmt(m.vmplane.rps)} | ${fmt(m.vmplane.p50)} / ${fmt(m.vmplane.p99)} ms | ${fmt(m.baseline.p50)} / ${fmt(m.baseline.p99)} ms |`);
      if (m.vmplane.unexpected > 0) failures.push(`list @${size}: ${m.vmplane.unexpected} unexpected statuses`);
    }

    const command = `npm run bench:api${DB === 'postgres' ? ' -- --db postgres' : ''}`;
    const body = [
      `### HTTP API on ${DB === 'postgres' ? 'PostgreSQL' : 'SQLite'}`,
      '',
      `\`${command}\` — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), autocannon in the same process tree on the same cores. ` +
        `Each cell is the median of ${REPEATS} runs of ${DURATION} s, vmplane and the baseline alternating, after ${WARMUP} s of each scenario on both, unrecorded. SDK_LATENCY_MS=0, SDK_FAILURE_RATE=0; vmplane logs every request (pino, info).`,
      '',
      '| scenario | connections | vmplane | vmplane p50 / p99 | baseline | baseline p50 / p99 | throughput vs baseline | p99 vs baseline | server CPU per pair or request: vmplane / baseline | vmplane peak RSS |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows,
      '',
      'Server CPU is each server process\'s user and system time over the run (`/proc/PID/stat`) divided by what it answered: unlike throughput, it hardly moves when other work shares the cores, so its ratio is the steadier comparison on a busy machine.',
      '',
      `List latency as the owner's VM count grows (16 connections): keyset pagination over an index, so the cost should not grow with the table.`,
      '',
      '| VMs owned | vmplane req/s | vmplane p50 / p99 | baseline p50 / p99 |',
      '| ---: | ---: | ---: | ---: |',
      ...scaling,
      '',
      `vmplane peak RSS per run (MB, in order): ${rssRuns.map((kb) => Math.round(kb / 1024)).join(', ')}.`,
      failures.length ? `\n**Unexpected statuses:** ${failures.join('; ')}` : '\nEvery request got the status it should (201/200 for pairs, 200 for reads).',
    ].join('\n');
    process.stdout.write(`\n${body}\n`);
    if (FULL_RUN) writeMarkdownSection(join(ROOT, 'docs', 'benchmarks.md'), `api-${DB}`, body);
    else process.stdout.write('\n(a partial or non-default run: docs/benchmarks.md left as it was)\n');
    if (failures.length) {
      process.exitCode = 1;
    }
  } finally {
    await vmplane.stop();
    await baseline.stop();
    await databases.drop();
  }
}

async function prepareDatabases(dir: string): Promise<{ vmplane: string; baseline: string; drop: () => Promise<void> }> {
  if (DB !== 'postgres') {
    return { vmplane: `sqlite:${join(dir, 'vmplane.sqlite')}`, baseline: `sqlite:${join(dir, 'baseline.sqlite')}`, drop: async () => undefined };
  }
  const admin = new Client({ connectionString: ADMIN_PG });
  await admin.connect();
  const suffix = Date.now().toString(36);
  const names = [`vmplane_bench_${suffix}`, `baseline_bench_${suffix}`];
  for (const name of names) await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = (name: string) => Object.assign(new URL(ADMIN_PG), { pathname: `/${name}` }).toString();
  return {
    vmplane: url(names[0]),
    baseline: url(names[1]),
    drop: async () => {
      const client = new Client({ connectionString: ADMIN_PG });
      await client.connect();
      for (const name of names) await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

async function login(url: string, username: string, password: string): Promise<string> {
  const response = await fetch(`${url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password }),
  });
  if (!response.ok) throw new Error(`login ${username}: ${response.status}`);
  return ((await response.json()) as { access_token: string }).access_token;
}

const VM_BODY = JSON.stringify({ name: 'bench-vm', cpu_cores: 1, memory: 256, disk_size: 1, labels: ['bench'] });

async function createVm(url: string, token: string): Promise<string> {
  const response = await fetch(`${url}/vms`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: VM_BODY });
  if (response.status !== 201) throw new Error(`create on ${url}: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { id: string }).id;
}

/** Gives a fresh user `size` VMs, written straight into each database (the API would take minutes). */
async function seedLister(vmplaneUrl: string, targets: Target[], size: number, databases: { vmplane: string; baseline: string }): Promise<void> {
  const adminToken = await login(vmplaneUrl, 'admin', 'adminpassword');
  const username = `lister-${size}`;
  const password = `${username}-password`;
  const created = await fetch(`${vmplaneUrl}/users`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ username, password, role: 'member' }),
  });
  const { id: ownerId } = (await created.json()) as { id: string };
  const token = await login(vmplaneUrl, username, password);
  for (const t of targets) t.listToken[size] = token;
  const ids = new UuidV7Generator(() => Date.now() - 86_400_000);
  const now = new Date();
  const rows = Array.from({ length: size }, (_, i) => [ids.next(), ownerId, `vm-${i}`, 1, 256, 1, null, '["bench"]', 'created', now]);
  await insertRows(databases.vmplane, 'vmplane', rows);
  await insertRows(databases.baseline, 'baseline', rows);
}

async function insertRows(url: string, kind: 'vmplane' | 'baseline', rows: unknown[][]): Promise<void> {
  const vmplaneSql = (p: (i: number) => string) =>
    `INSERT INTO vms (id, owner_id, name, cpu_cores, memory, disk_size, public_ip, labels, status, status_reason, host_id, gpu_count, gpu_model, hypervisor_id, released_at, deleted_at, created_at, updated_at)
     VALUES (${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)}, ${p(8)}, ${p(9)}, NULL, NULL, 0, NULL, NULL, NULL, NULL, ${p(10)}, ${p(10)})`;
  const baselineSql = (p: (i: number) => string) =>
    `INSERT INTO vms (id, owner_id, name, cpu_cores, memory, disk_size, public_ip, labels, status, created_at, updated_at, deleted_at)
     VALUES (${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)}, ${p(8)}, ${p(9)}, ${p(10)}, ${p(10)}, NULL)`;
  const build = kind === 'vmplane' ? vmplaneSql : baselineSql;
  if (url.startsWith('sqlite:')) {
    const db = new Database(url.slice('sqlite:'.length));
    db.pragma('busy_timeout = 10000');
    // better-sqlite3 binds arrays to anonymous markers only, so the timestamp is passed twice.
    const stmt = db.prepare(build(() => '?'));
    const ts = (d: Date) => (kind === 'vmplane' ? d.toISOString().replace('T', ' ').slice(0, 23) : d.toISOString());
    db.transaction(() => {
      for (const r of rows) stmt.run(...r.slice(0, 9), ts(r[9] as Date), ts(r[9] as Date));
    })();
    db.close();
    return;
  }
  const client = new Client({ connectionString: url });
  await client.connect();
  await client.query('BEGIN');
  const sql = build((i) => `$${i}`);
  for (const r of rows) await client.query(sql, kind === 'vmplane' ? r : [...r.slice(0, 9), (r[9] as Date).toISOString()]);
  await client.query('COMMIT');
  await client.end();
}

async function alternate(
  targets: Target[],
  run: (t: Target) => Promise<Measurement>,
  rssRuns: number[],
): Promise<Record<'vmplane' | 'baseline', Measurement>> {
  const results: Record<string, Measurement[]> = { vmplane: [], baseline: [] };
  for (let i = 0; i < REPEATS; i++) {
    for (const t of i % 2 === 0 ? targets : [...targets].reverse()) {
      const sampler = new RssSampler(t.child.process.pid!);
      sampler.start();
      const cpuBefore = cpuMs(t.child.process.pid!);
      const m = await run(t);
      m.cpuUsPerRequest = ((cpuMs(t.child.process.pid!) - cpuBefore) * 1000) / Math.max(1, m.requests);
      m.rssKb = sampler.stop();
      if (t.name === 'vmplane') rssRuns.push(m.rssKb);
      results[t.name].push(m);
    }
  }
  const summarize = (ms: Measurement[]): Measurement => ({
    rps: median(ms.map((m) => m.rps)),
    p50: median(ms.map((m) => m.p50)),
    p99: median(ms.map((m) => m.p99)),
    unexpected: ms.reduce((n, m) => n + m.unexpected, 0),
    seen: ms.reduce<Record<string, number>>((all, m) => {
      for (const [what, n] of Object.entries(m.seen)) all[what] = (all[what] ?? 0) + n;
      return all;
    }, {}),
    rssKb: Math.max(...ms.map((m) => m.rssKb)),
    requests: ms.reduce((n, m) => n + m.requests, 0),
    cpuUsPerRequest: median(ms.map((m) => m.cpuUsPerRequest)),
  });
  return { vmplane: summarize(results.vmplane), baseline: summarize(results.baseline) };
}

/** `1.23 / 0.31 ms (4.0×)`: CPU per pair (divisor 2) or per request, vmplane's and the baseline's. */
function cpuCell(v: Measurement, b: Measurement, divisor: number): string {
  // Three decimals below a millisecond: a fast machine answers a GET in well under 0.1 ms of CPU.
  const ms = (m: Measurement) => {
    const value = (m.cpuUsPerRequest * divisor) / 1000;
    return value < 1 ? value.toFixed(3) : value.toFixed(2);
  };
  return `${ms(v)} / ${ms(b)} ms (${(v.cpuUsPerRequest / Math.max(1e-9, b.cpuUsPerRequest)).toFixed(1)}×)`;
}

/** Runs autocannon; transport errors and timeouts count as unexpected, like wrong statuses seen in onResponse. */
async function cannon(options: autocannon.Options, count: Tally): Promise<Measurement> {
  const result = await autocannon({ ...options, duration: cannonDuration });
  const seen = { ...count.seen };
  if (result.errors > 0) seen.errors = result.errors;
  if (result.timeouts > 0) seen.timeouts = result.timeouts;
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    unexpected: count.unexpected + result.errors + result.timeouts,
    seen,
    rssKb: 0,
    requests: result.requests.total,
    cpuUsPerRequest: 0,
  };
}

function createDeletePairs(t: Target, connections: number): Promise<Measurement> {
  const count = newTally();
  return cannon(
    {
      url: t.child.url,
      connections,
      // Per-request headers: a DELETE must not claim a JSON body it does not have.
      headers: { authorization: `Bearer ${t.token}` },
      requests: [
        {
          method: 'POST',
          path: '/vms',
          headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' },
          body: VM_BODY,
          onResponse: (status: number, body: string, context: Record<string, unknown>) => {
            if (status !== 201) miss(count, `POST ${status}${problemCode(body)}`);
            else context.id = (JSON.parse(body) as { id: string }).id;
          },
        },
        {
          method: 'DELETE',
          setupRequest: (request: autocannon.Request, context: Record<string, unknown>) => ({ ...request, path: `/vms/${context.id}` }),
          onResponse: (status: number) => {
            if (status !== 200) miss(count, `DELETE ${status}`);
          },
        },
      ],
    } as autocannon.Options,
    count,
  );
}

/** Creates the tenant users through the admin API; their tokens are signed with the shared secret, so the baseline takes them too. */
async function createTenants(url: string): Promise<string[]> {
  const admin = await login(url, 'admin', 'adminpassword');
  const tokens: string[] = [];
  for (let i = 0; i < TENANTS; i++) {
    const username = `tenant-${i}`;
    const password = `${username}-password`;
    const response = await fetch(`${url}/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    if (response.status !== 201) throw new Error(`create ${username}: ${response.status} ${await response.text()}`);
    tokens.push(await login(url, username, password));
  }
  return tokens;
}

/**
 * A tenants run, then the VMs it left: a run ends between a create and its
 * delete on most connections, and those VMs would fill the small GPU models
 * (the demo fleet has four L4s) for the next run, whose creates would then be
 * refused with 503s that measure the leftovers, not the API.
 */
async function tenantRun(t: Target): Promise<Measurement> {
  const measured = await tenantPairs(t, TENANTS);
  for (const token of t.tenantTokens) {
    const page = (await (await fetch(`${t.child.url}/vms?limit=100`, { headers: { authorization: `Bearer ${token}` } })).json()) as { items: { id: string; status: string }[] };
    for (const vm of page.items.filter((v) => v.status !== 'deleted')) {
      await fetch(`${t.child.url}/vms/${vm.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    }
  }
  return measured;
}

/** One connection per tenant: each creates a VM of its shape and deletes it, over and over. */
function tenantPairs(t: Target, connections: number): Promise<Measurement> {
  const count = newTally();
  let next = 0;
  return cannon(
    {
      url: t.child.url,
      connections,
      requests: [
        {
          method: 'POST',
          path: '/vms',
          setupRequest: (request: autocannon.Request, context: Record<string, unknown>) => {
            if (context.tenant === undefined) context.tenant = next++ % t.tenantTokens.length;
            const tenant = context.tenant as number;
            const body = JSON.stringify({ name: `tenant-${tenant}`, cpu_cores: 2, memory: 4096, disk_size: 20, ...TENANT_SHAPES[tenant % TENANT_SHAPES.length] });
            return { ...request, headers: { authorization: `Bearer ${t.tenantTokens[tenant]}`, 'content-type': 'application/json' }, body };
          },
          onResponse: (status: number, body: string, context: Record<string, unknown>) => {
            if (status !== 201) miss(count, `POST ${status}${problemCode(body)}`);
            else context.id = (JSON.parse(body) as { id: string }).id;
          },
        },
        {
          method: 'DELETE',
          setupRequest: (request: autocannon.Request, context: Record<string, unknown>) => ({
            ...request,
            path: `/vms/${context.id}`,
            headers: { authorization: `Bearer ${t.tenantTokens[context.tenant as number]}` },
          }),
          onResponse: (status: number) => {
            if (status !== 200) miss(count, `DELETE ${status}`);
          },
        },
      ],
    } as autocannon.Options,
    count,
  );
}

function getOne(t: Target, connections: number): Promise<Measurement> {
  const count = newTally();
  return cannon(
    {
      url: `${t.child.url}/vms/${t.vmId}`,
      connections,
      headers: { authorization: `Bearer ${t.token}` },
      requests: [{ method: 'GET', onResponse: (status: number) => void (status !== 200 && miss(count, `GET ${status}`)) }],
    } as autocannon.Options,
    count,
  );
}

function listPage(t: Target, connections: number, size: number): Promise<Measurement> {
  const count = newTally();
  return cannon(
    {
      url: `${t.child.url}/vms?limit=50`,
      connections,
      headers: { authorization: `Bearer ${t.listToken[size]}` },
      requests: [
        {
          method: 'GET',
          onResponse: (status: number, body: string) => {
            if (status !== 200 || (JSON.parse(body) as { items: unknown[] }).items.length !== 50) miss(count, `GET ${status}`);
          },
        },
      ],
    } as autocannon.Options,
    count,
  );
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function pct(ratio: number): string {
  return `${Math.round(ratio * 100)} %`;
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
