/**
 * docs/api.md as a reader runs it: every ```sh block after "Before you start",
 * in order, in one bash session from the repository root, against a real server
 * in demo mode (the tour's `API=http://127.0.0.1:8000` pointed at the test
 * server). Each block's output must show what the response block under it
 * shows: the same HTTP status lines, the same `-w '%{http_code}'` lines and the
 * same one-word results (`succeeded`, `draining`, `insufficient_capacity` …).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, ServerHandle, startServer } from '../support/server-process';

jest.setTimeout(120_000);

interface Example {
  /** 1-based line of the ```sh fence in docs/api.md. */
  line: number;
  script: string;
  /** The fenced block right after it, if it is not another command. */
  expected: string | null;
}

function examples(markdown: string): Example[] {
  const fences = [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)];
  const result: Example[] = [];
  fences.forEach((fence, i) => {
    if (fence[1] !== 'sh') return;
    const next = fences[i + 1];
    result.push({
      line: markdown.slice(0, fence.index).split('\n').length,
      script: fence[2],
      expected: next && next[1] !== 'sh' ? next[2] : null,
    });
  });
  return result;
}

/** The lines of a documented response that the real output must also contain. */
function checkedLines(expected: string): string[] {
  return expected
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => /^HTTP\/1\.1 \d{3}\b/.test(line) || /^(\d{3} ?)+$/.test(line) || /^[a-z_]+$/.test(line))
    .map((line) => (line.startsWith('HTTP/1.1') ? line.slice(0, 12) : line));
}

function runBash(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', script], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('exit', (code) => resolve({ code, output }));
  });
}

describe('docs/api.md, every curl example against the real server', () => {
  let server: ServerHandle;

  beforeAll(async () => {
    // npm start's settings, except that failures are not injected (1 in 100 creates would otherwise retry).
    server = await startServer({ env: { JWT_SECRET: undefined, SDK_API_KEY: undefined } });
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('runs the tour in order and gets the documented statuses and results', async () => {
    const tour = examples(readFileSync(join(ROOT, 'docs', 'api.md'), 'utf8'));
    expect(tour[0].script).toContain('npm start');
    const steps = tour.slice(1);
    expect(steps.length).toBeGreaterThan(20);
    expect(steps[0].script).toContain('API=http://127.0.0.1:8000');

    const marker = (i: number) => `@@@example ${i}@@@`;
    const script = [
      'set -u',
      ...steps.flatMap((step, i) => [`echo '${marker(i)}'`, step.script.replace('API=http://127.0.0.1:8000', `API=${server.url}`)]),
      `echo '${marker(steps.length)}'`,
    ].join('\n');
    const { code, output } = await runBash(script, {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      SDK_STATE_PATH: server.hypervisorStatePath,
    });

    expect({ code, tail: code === 0 ? '' : output.slice(-2000) }).toEqual({ code: 0, tail: '' });
    const problems: string[] = [];
    steps.forEach((step, i) => {
      const start = output.indexOf(marker(i));
      const end = output.indexOf(marker(i + 1));
      const actual = output.slice(start + marker(i).length, end);
      const where = `docs/api.md:${step.line}`;
      if (start < 0 || end < 0) problems.push(`${where}: did not run to the end`);
      for (const bad of [/command not found/, /\bundefined\b/, /Error: /, /curl: \(\d+\)/]) {
        if (bad.test(actual)) problems.push(`${where}: output has ${bad}:\n${actual.slice(0, 500)}`);
      }
      let from = 0;
      for (const line of checkedLines(step.expected ?? '')) {
        const at = actual.indexOf(line, from);
        if (at < 0) problems.push(`${where}: expected "${line}" in:\n${actual.slice(0, 1500)}`);
        else from = at + line.length;
      }
    });
    expect(problems).toEqual([]);
  });
});
