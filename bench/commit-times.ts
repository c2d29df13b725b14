/**
 * A look inside the SQLite server: how long each COMMIT takes on the event
 * loop. Preloaded into the server by the API benchmark:
 *
 *   BENCH_SERVER_NODE_FLAGS=--require=./dist/bench/commit-times.js node dist/bench/api.js --scenarios pairs,tenants
 *
 * At exit the main thread writes one line (count, sum, p50/p90/p99/max in µs,
 * and how many took over 2 ms) to $COMMIT_TIMES_FILE, or to
 * commit-times-<pid>.txt in the temporary folder. A COMMIT that also
 * checkpoints the write-ahead log (copies it into the database file and
 * fsyncs it) is the slow kind.
 */
import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';

const SLOW_US = 2000;

if (isMainThread) {
  const probe = new Database(':memory:');
  const statement = Object.getPrototypeOf(probe.prepare('SELECT 1')) as { run: (...args: unknown[]) => unknown };
  probe.close();
  const run = statement.run;
  const times: number[] = [];
  statement.run = function (this: { source: string }, ...args: unknown[]) {
    if (this.source !== 'COMMIT') return run.apply(this, args);
    const started = process.hrtime.bigint();
    try {
      return run.apply(this, args);
    } finally {
      times.push(Number(process.hrtime.bigint() - started) / 1000);
    }
  };
  process.on('exit', () => {
    if (times.length === 0) return;
    times.sort((a, b) => a - b);
    const at = (q: number) => Math.round(times[Math.floor(q * (times.length - 1))]);
    const slow = times.filter((t) => t > SLOW_US);
    const ms = (values: number[]) => Math.round(values.reduce((a, b) => a + b, 0) / 1000);
    const line =
      `COMMITs: ${times.length}, ${ms(times)} ms in all; p50 ${at(0.5)} µs, p90 ${at(0.9)} µs, p99 ${at(0.99)} µs, max ${at(1)} µs; ` +
      `${slow.length} over ${SLOW_US / 1000} ms, ${ms(slow)} ms in all\n`;
    writeFileSync(process.env.COMMIT_TIMES_FILE ?? join(tmpdir(), `commit-times-${process.pid}.txt`), line);
  });
}
