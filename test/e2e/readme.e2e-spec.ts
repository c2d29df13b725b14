/**
 * README.md as a new user copies it: every ```sh block after the quick start's
 * `npm start`, in order, in one bash session from the repository root, against a
 * real server in demo mode. `http://127.0.0.1:8000` in the commands, and the CLI's
 * default API (through VMPLANE_API), point at the test server.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { bearer, login } from '../support/api';
import { badOutput, runExamples, shellExamples } from '../support/doc-examples';
import { ROOT, ServerHandle, startServer } from '../support/server-process';

jest.setTimeout(120_000);

interface Vm {
  id: string;
  name: string;
  status: string;
  gpu_count: number;
}

describe('README.md, the quick start and the CLI as written', () => {
  let server: ServerHandle;

  beforeAll(async () => {
    // npm start's settings (demo mode, demo keys), except that failures are not injected.
    server = await startServer({ env: { JWT_SECRET: undefined, SDK_API_KEY: undefined } });
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('runs every block in order, with its variables set, and does what the comments say', async () => {
    const blocks = shellExamples(readFileSync(join(ROOT, 'README.md'), 'utf8'));
    expect(blocks[0].script).toMatch(/^npm start\b/m);
    const steps = blocks.slice(1).map((block) => ({ ...block, script: block.script.replaceAll('http://127.0.0.1:8000', server.url) }));
    const curl = steps.findIndex((step) => step.script.includes('DELETE'));
    const async = steps.findIndex((step) => step.script.includes('respond-async'));
    const cli = steps.findIndex((step) => step.script.includes('vmplane vm create'));
    expect([curl, async, cli].every((i) => i >= 0)).toBe(true);

    const home = mkdtempSync(join(tmpdir(), 'vmplane-readme-'));
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

    const admin = await login(server.url, 'admin', 'adminpassword');
    const vm = async (id: string): Promise<Vm> => (await request(server.url).get(`/vms/${id}`).set(bearer(admin))).body as Vm;

    // Create then delete, with the id taken from the create's answer.
    const created = JSON.parse(/^\{.*"name":"test-vm".*\}$/m.exec(outputs[curl]!)![0]) as Vm;
    expect(created.status).toBe('created');
    const deleted = JSON.parse(outputs[curl]!.trim().split('\n').pop()!) as Vm;
    expect(deleted).toMatchObject({ id: created.id, status: 'deleted' });
    expect(await vm(created.id)).toMatchObject({ status: 'deleted' });

    // 202 with Location, then the operation it points at.
    expect(outputs[async]!).toMatch(/^HTTP\/1\.1 202 /m);
    const operationId = /^location: \/operations\/([0-9a-f-]{36})\r?$/im.exec(outputs[async]!)![1];
    const operation = JSON.parse(outputs[async]!.trim().split('\n').pop()!) as { id: string; action: string; vm_id: string };
    expect(operation).toMatchObject({ id: operationId, action: 'create' });
    expect(await vm(operation.vm_id)).toMatchObject({ name: 'trainer', gpu_count: 8 });

    // The CLI: logged in, showed capacity, created a GPU VM and deleted it again.
    expect(outputs[cli]!).toMatch(/^Logged in to .* as testuser/m);
    expect(outputs[cli]!).toMatch(/^GPU MODEL\s+REGION\s+TOTAL/m);
    expect(outputs[cli]!).toMatch(/^VM cli-vm is created \(power: running\) in/m);
    expect(outputs[cli]!).toMatch(/\scli-vm\s+created\s/);
    expect(outputs[cli]!).toMatch(/^Status\s+deleted$/m);
    const cliVmId = /^ID\s+([0-9a-f-]{36})$/m.exec(outputs[cli]!)![1];
    expect(await vm(cliVmId)).toMatchObject({ name: 'cli-vm', status: 'deleted', gpu_count: 1 });
  });
});
