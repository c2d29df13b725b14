/**
 * docs/api.md as a reader runs it: every ```sh block after "Before you start",
 * in order, in one bash session from the repository root, against a real server
 * in demo mode (the tour's `API=http://127.0.0.1:8000` pointed at the test
 * server). Each block's output must show what the response block under it
 * shows: the same HTTP status lines, the same `-w '%{http_code}'` lines, the
 * same numbers and the same one-word results (`succeeded`, `draining`,
 * `insufficient_capacity` …), as whole lines and in order (see checkedLines).
 * readme.e2e-spec.ts runs the same tour again right after the README's examples.
 */
import { apiTourSteps, checkedLines, outputProblems, runExamples } from '../support/doc-examples';
import { ServerHandle, startServer } from '../support/server-process';

jest.setTimeout(120_000);

describe('docs/api.md, every curl example against the real server', () => {
  let server: ServerHandle;

  beforeAll(async () => {
    // npm start's settings, except that failures are not injected (1 in 100 creates would otherwise retry).
    server = await startServer({ env: { JWT_SECRET: undefined, SDK_API_KEY: undefined } });
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('checks whole lines of the documented outputs: statuses, numbers and one-word results', () => {
    expect(checkedLines('HTTP/1.1 201 Created\nlocation: /vms/x\n{"id":"x"}\n200 200\n1000\nshelved shut_off\nstop:succeeded create:succeeded\nfailed: missing')).toEqual([
      'HTTP/1.1 201',
      '200 200',
      '1000',
      'shelved shut_off',
      'stop:succeeded create:succeeded',
    ]);
  });

  it('runs the tour in order and gets the documented statuses and results', async () => {
    const steps = apiTourSteps(server.url);
    expect(steps.length).toBeGreaterThan(20);

    const { code, output, outputs } = await runExamples(steps, { PATH: process.env.PATH, HOME: process.env.HOME, SDK_STATE_PATH: server.hypervisorStatePath }, ['set -u']);

    expect({ code, tail: code === 0 ? '' : output.slice(-2000) }).toEqual({ code: 0, tail: '' });
    expect(outputProblems('docs/api.md', steps, outputs)).toEqual([]);
  });
});
