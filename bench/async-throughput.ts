/**
 * `npm run bench:async [-- --count 1000 --latency 500 --concurrency 100,1]`
 *
 * How long N asynchronous creates take to reach `created` when every
 * hypervisor call takes SDK_LATENCY_MS, for each WORKER_CONCURRENCY. The
 * requests are sent with `Prefer: respond-async` (each answers 202 at once),
 * then the run waits until no VM is left provisioning.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../src/common/project-root';
import { freePort, startChild, writeMarkdownSection } from './bench-support';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
const COUNT = Number(args.get('count') ?? 1000);
const LATENCY = Number(args.get('latency') ?? 500);
const CONCURRENCIES = (args.get('concurrency') ?? '100,1').split(',').map(Number);
const ROOT = projectRoot(__dirname);

async function run(concurrency: number): Promise<{ acceptSeconds: number; doneSeconds: number; created: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'vmplane-async-'));
  const fleetFile = join(dir, 'fleet.json');
  writeFileSync(fleetFile, JSON.stringify({ hosts: [{ name: 'async-cpu', region: 'bench', cpu_cores: 100_000, memory_mib: 2_000_000_000, disk_gib: 100_000_000, gpus: [] }] }));
  const server = await startChild(
    join(ROOT, 'dist', 'src', 'main.js'),
    {
      PATH: process.env.PATH,
      VMPLANE_DEMO: '1',
      JWT_SECRET: 'bench-secret-bench-secret-bench-secret',
      SDK_LATENCY_MS: String(LATENCY),
      SDK_FAILURE_RATE: '0',
      WORKER_CONCURRENCY: String(concurrency),
      OPERATION_LEASE_MS: String(Math.max(30_000, 3 * LATENCY)),
      DATABASE_URL: `sqlite:${join(dir, 'vmplane.sqlite')}`,
      SDK_STATE_PATH: join(dir, 'hypervisor.sqlite'),
      FLEET_FILE: fleetFile,
      QUOTA_VMS: String(COUNT * 2),
      QUOTA_VCPUS: String(COUNT * 2),
      QUOTA_MEMORY_MIB: String(COUNT * 1024),
      RECONCILE_INTERVAL_MS: '0',
      LOG_LEVEL: 'warn',
    },
    await freePort(),
    join(dir, 'server.log'),
  );
  try {
    const login = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'username=testuser&password=testpassword',
    });
    const { access_token: token } = (await login.json()) as { access_token: string };
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', prefer: 'respond-async' };
    const started = Date.now();
    const senders = 32;
    let next = 0;
    await Promise.all(
      Array.from({ length: senders }, async () => {
        while (next < COUNT) {
          const i = next++;
          const response = await fetch(`${server.url}/vms`, {
            method: 'POST',
            headers,
            body: JSON.stringify({ name: `async-${i}`, cpu_cores: 1, memory: 256, disk_size: 1 }),
          });
          if (response.status !== 202) throw new Error(`create ${i}: ${response.status} ${await response.text()}`);
        }
      }),
    );
    const acceptSeconds = (Date.now() - started) / 1000;
    let created = 0;
    for (;;) {
      const page = (await (await fetch(`${server.url}/vms?status=provisioning&limit=1`, { headers })).json()) as { items: unknown[] };
      if (page.items.length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const doneSeconds = (Date.now() - started) / 1000;
    const me = (await (await fetch(`${server.url}/users/me`, { headers })).json()) as { usage: { vms: number } };
    created = me.usage.vms;
    return { acceptSeconds, doneSeconds, created };
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  const rows: string[] = [];
  for (const concurrency of CONCURRENCIES) {
    const r = await run(concurrency);
    const line = `| ${concurrency} | ${COUNT} | ${r.created} | ${r.acceptSeconds.toFixed(1)} s | **${r.doneSeconds.toFixed(1)} s** | ${(r.created / r.doneSeconds).toFixed(1)} VMs/s |`;
    process.stdout.write(`${line}\n`);
    rows.push(line);
  }
  const body = [
    '### Asynchronous provisioning throughput',
    '',
    `\`npm run bench:async -- --count ${COUNT} --latency ${LATENCY} --concurrency ${CONCURRENCIES.join(',')}\` — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpus().length} cores, SQLite. ` +
      `${COUNT} \`POST /vms\` with \`Prefer: respond-async\` from 32 concurrent senders; every hypervisor create takes SDK_LATENCY_MS=${LATENCY}. "All created" is when no VM is left provisioning.`,
    '',
    '| WORKER_CONCURRENCY | requests | created | all 202s received | all created | rate |',
    '| ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
  ].join('\n');
  writeMarkdownSection(join(ROOT, 'docs', 'benchmarks.md'), 'async', body);
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
