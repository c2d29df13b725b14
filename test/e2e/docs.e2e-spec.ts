/**
 * docs/api.md as a reader runs it: every ```sh block after "Before you start",
 * in order, in one bash session from the repository root, against a real server
 * in demo mode (the tour's `API=http://127.0.0.1:8000` pointed at the test
 * server). Each block's output must show what the response block under it
 * shows: the same HTTP status lines, the same `-w '%{http_code}'` lines and the
 * same one-word results (`succeeded`, `draining`, `insufficient_capacity` …).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { badOutput, runExamples, shellExamples } from '../support/doc-examples';
import { ROOT, ServerHandle, startServer } from '../support/server-process';

jest.setTimeout(120_000);

/** The lines of a documented response that the real output must also contain. */
function checkedLines(expected: string): string[] {
  return expected
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => /^HTTP\/1\.1 \d{3}\b/.test(line) || /^(\d{3} ?)+$/.test(line) || /^[a-z_]+$/.test(line))
    .map((line) => (line.startsWith('HTTP/1.1') ? line.slice(0, 12) : line));
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
    const tour = shellExamples(readFileSync(join(ROOT, 'docs', 'api.md'), 'utf8'));
    expect(tour[0].script).toContain('npm start');
    const steps = tour.slice(1);
    expect(steps.length).toBeGreaterThan(20);
    expect(steps[0].script).toContain('API=http://127.0.0.1:8000');
    steps[0] = { ...steps[0], script: steps[0].script.replace('API=http://127.0.0.1:8000', `API=${server.url}`) };

    const { code, output, outputs } = await runExamples(steps, { PATH: process.env.PATH, HOME: process.env.HOME, SDK_STATE_PATH: server.hypervisorStatePath }, ['set -u']);

    expect({ code, tail: code === 0 ? '' : output.slice(-2000) }).toEqual({ code: 0, tail: '' });
    const problems: string[] = [];
    steps.forEach((step, i) => {
      const actual = outputs[i];
      const where = `docs/api.md:${step.line}`;
      if (actual === null) {
        problems.push(`${where}: did not run to the end`);
        return;
      }
      for (const bad of badOutput(actual)) problems.push(`${where}: output has ${bad}:\n${actual.slice(0, 500)}`);
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
