/**
 * `npm run bench:platform` — why vmplane runs Nest on Fastify: the same
 * minimal Nest app on each HTTP platform, side by side in one run, driven by
 * autocannon (16 connections), alternating, median of 3 runs.
 */
import autocannon from 'autocannon';
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../src/common/project-root';
import { freePort, median, startChild, writeMarkdownSection } from './bench-support';

const ROOT = projectRoot(__dirname);
const DURATION = 5;
const REPEATS = 3;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vmplane-platform-'));
  const script = join(ROOT, 'dist', 'bench', 'platform-server.js');
  const servers = {
    fastify: await startChild(script, { PATH: process.env.PATH, PLATFORM: 'fastify' }, await freePort(), join(dir, 'fastify.log')),
    express: await startChild(script, { PATH: process.env.PATH, PLATFORM: 'express' }, await freePort(), join(dir, 'express.log')),
  };
  const scenarios: [string, (url: string) => autocannon.Options][] = [
    ['GET /things/{id} (JSON read)', (url) => ({ url: `${url}/things/abc` })],
    [
      'POST /things (validated JSON body)',
      (url) => ({ url: `${url}/things`, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'vm', cpu_cores: 2 }) }),
    ],
  ];
  const rows: string[] = [];
  try {
    for (const [name, options] of scenarios) {
      const results: Record<string, number[]> = { fastify: [], express: [] };
      const p99: Record<string, number[]> = { fastify: [], express: [] };
      for (let i = 0; i < REPEATS; i++) {
        for (const platform of i % 2 ? (['express', 'fastify'] as const) : (['fastify', 'express'] as const)) {
          const r = await autocannon({ ...options(servers[platform].url), connections: 16, duration: DURATION });
          if (r.non2xx || r.errors) throw new Error(`${platform} ${name}: ${r.non2xx} non-2xx, ${r.errors} errors`);
          results[platform].push(r.requests.average);
          p99[platform].push(r.latency.p99);
        }
      }
      const f = median(results.fastify);
      const e = median(results.express);
      rows.push(`| ${name} | ${Math.round(f)} req/s, p99 ${median(p99.fastify)} ms | ${Math.round(e)} req/s, p99 ${median(p99.express)} ms | **${(f / e).toFixed(2)}×** |`);
    }
  } finally {
    await servers.fastify.stop();
    await servers.express.stop();
  }
  const body = [
    '### HTTP platform: Nest on Fastify vs Nest on Express',
    '',
    `\`npm run bench:platform\` — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpus().length} cores. The same minimal Nest 11 app (bench/platform-server.ts) on each platform, median of ${REPEATS} runs of ${DURATION} s, alternating, 16 connections.`,
    '',
    '| scenario | Nest + Fastify | Nest + Express | Fastify / Express |',
    '| --- | ---: | ---: | ---: |',
    ...rows,
  ].join('\n');
  process.stdout.write(`${body}\n`);
  writeMarkdownSection(join(ROOT, 'docs', 'benchmarks.md'), 'platform', body);
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
