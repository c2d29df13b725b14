/**
 * README.md as a new user copies it: every ```sh block after the quick start's
 * `npm start`, in order, in one bash session from the repository root, against a
 * real server in demo mode. `http://127.0.0.1:8000` in the commands, and the CLI's
 * default API (through VMPLANE_API), point at the test server. Then what a new user
 * does next, on the same server: the README's examples once more (a second run
 * within a day must work as the first did), and the tour of docs/api.md, which
 * needs the account the README's examples leave behind to be empty.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { bearer, login } from '../support/api';
import { ShellExample, apiTourSteps, badOutput, outputProblems, runExamples, shellExamples } from '../support/doc-examples';
import { ROOT, ServerHandle, startServer } from '../support/server-process';

jest.setTimeout(120_000);

interface Vm {
  id: string;
  name: string;
  status: string;
  gpu_count: number;
}

interface Operation {
  id: string;
  action: string;
  status: string;
  vm_id: string;
}

describe('README.md, the quick start and the CLI as written, then the docs/api.md tour', () => {
  let server: ServerHandle;
  let home: string;
  let steps: ShellExample[];
  let curl: number;
  let async: number;
  let cli: number;

  beforeAll(async () => {
    // npm start's settings (demo mode, demo keys), except that failures are not injected.
    server = await startServer({ env: { JWT_SECRET: undefined, SDK_API_KEY: undefined } });
    home = mkdtempSync(join(tmpdir(), 'vmplane-readme-'));
    const blocks = shellExamples(readFileSync(join(ROOT, 'README.md'), 'utf8'));
    expect(blocks[0].script).toMatch(/^npm start\b/m);
    steps = blocks.slice(1).map((block) => ({ ...block, script: block.script.replaceAll('http://127.0.0.1:8000', server.url) }));
    curl = steps.findIndex((step) => step.script.includes('DELETE'));
    async = steps.findIndex((step) => step.script.includes('respond-async'));
    cli = steps.findIndex((step) => step.script.includes('vmplane vm create'));
    expect([curl, async, cli].every((i) => i >= 0)).toBe(true);
  });

  afterAll(async () => {
    await server?.stop();
  });

  // One sign-in each: POST /token is rate-limited per client (TOKEN_REQUESTS_PER_MINUTE), and the tour signs in ten times.
  let admin: string | undefined;
  let testuser: string | undefined;

  const vm = async (id: string): Promise<Vm> => {
    admin ??= await login(server.url, 'admin', 'adminpassword');
    return (await request(server.url).get(`/vms/${id}`).set(bearer(admin))).body as Vm;
  };

  /** Runs the README's blocks once, checks what each printed, and returns the operation the async example followed. */
  async function runReadme(): Promise<Operation> {
    const env = {
      PATH: process.env.PATH,
      HOME: home,
      VMPLANE_API: server.url,
      VMPLANE_CONFIG: join(home, 'vmplane.json'),
      npm_config_update_notifier: 'false',
    };
    // -u: a variable the README forgot to set fails the run (it used to DELETE /vms/).
    // Aliases are on in an interactive shell, which is where a reader types them.
    const { code, output, outputs } = await runExamples(steps, env, ['set -euo pipefail', 'shopt -s expand_aliases']);
    expect({ code, tail: code === 0 ? '' : output.slice(-3000) }).toEqual({ code: 0, tail: '' });
    const problems = steps.flatMap((step, i) => {
      const printed = outputs[i];
      if (printed === null) return [`README.md:${step.line}: did not run to the end`];
      return badOutput(printed).map((bad) => `README.md:${step.line}: output has ${bad}:\n${printed.slice(0, 800)}`);
    });
    expect(problems).toEqual([]);

    // Create then delete, with the id taken from the create's answer.
    const created = JSON.parse(/^\{.*"name":"test-vm".*\}$/m.exec(outputs[curl]!)![0]) as Vm;
    expect(created.status).toBe('created');
    const deleted = JSON.parse(outputs[curl]!.trim().split('\n').pop()!) as Vm;
    expect(deleted).toMatchObject({ id: created.id, status: 'deleted' });
    expect(await vm(created.id)).toMatchObject({ status: 'deleted' });

    // 202 with Location (not a replay of an earlier run), the operation it points at followed to its end, then the VM deleted.
    expect(outputs[async]!).toMatch(/^HTTP\/1\.1 202 /m);
    expect(outputs[async]!).not.toMatch(/^idempotent-replayed:/im);
    const operationId = /^location: \/operations\/([0-9a-f-]{36})\r?$/im.exec(outputs[async]!)![1];
    const operation = JSON.parse(/^\{.*"action":"create".*\}$/m.exec(outputs[async]!)![0]) as Operation;
    expect(operation).toMatchObject({ id: operationId, action: 'create', status: 'succeeded' });
    const trainer = JSON.parse(outputs[async]!.trim().split('\n').pop()!) as Vm;
    expect(trainer).toMatchObject({ id: operation.vm_id, name: 'trainer', status: 'deleted' });
    expect(await vm(operation.vm_id)).toMatchObject({ name: 'trainer', gpu_count: 8, status: 'deleted' });

    // The CLI: logged in, showed capacity, created a GPU VM and deleted it again.
    expect(outputs[cli]!).toMatch(/^Logged in to .* as testuser/m);
    expect(outputs[cli]!).toMatch(/^GPU MODEL\s+REGION\s+TOTAL/m);
    expect(outputs[cli]!).toMatch(/^VM cli-vm is created \(power: running\) in/m);
    expect(outputs[cli]!).toMatch(/\scli-vm\s+created\s/);
    expect(outputs[cli]!).toMatch(/^Status\s+deleted$/m);
    const cliVmId = /^ID\s+([0-9a-f-]{36})$/m.exec(outputs[cli]!)![1];
    expect(await vm(cliVmId)).toMatchObject({ name: 'cli-vm', status: 'deleted', gpu_count: 1 });
    return operation;
  }

  /** What the demo user holds: live VMs (GET /vms leaves deleted ones out) and usage. */
  async function testuserHoldings(): Promise<{ vms: string[]; usage: unknown }> {
    testuser ??= await login(server.url, 'testuser', 'testpassword');
    const vms = (await request(server.url).get('/vms?limit=200').set(bearer(testuser))).body as { items: Vm[] };
    const me = (await request(server.url).get('/users/me').set(bearer(testuser))).body as { usage: unknown };
    return { vms: vms.items.map((v) => `${v.name} ${v.status}`), usage: me.usage };
  }

  const NOTHING = { vms: [], usage: { vcpus: 0, memory_mib: 0, gpus: 0, gpu_milli: 0, vms: 0 } };

  let first: Operation;

  it('runs every block in order, with its variables set, does what the comments say, and deletes every VM it made', async () => {
    first = await runReadme();
    expect(await testuserHoldings()).toEqual(NOTHING);
  });

  it('runs again the same way a second time (a fresh Idempotency-Key, so no replay of the first run)', async () => {
    const second = await runReadme();
    expect(second.id).not.toBe(first.id);
    expect(second.vm_id).not.toBe(first.vm_id);
    expect(await testuserHoldings()).toEqual(NOTHING);
  });

  it('leaves the server ready for the docs/api.md tour, which then runs as documented', async () => {
    const tour = apiTourSteps(server.url);
    const { code, output, outputs } = await runExamples(tour, { PATH: process.env.PATH, HOME: home, SDK_STATE_PATH: server.hypervisorStatePath }, ['set -u']);
    expect({ code, tail: code === 0 ? '' : output.slice(-2000) }).toEqual({ code: 0, tail: '' });
    expect(outputProblems('docs/api.md', tour, outputs)).toEqual([]);
  });
});
