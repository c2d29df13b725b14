/**
 * The `vmplane` CLI as a user runs it: the package's bin (libs/cli/bin/vmplane.js) as a
 * child process against the real server with the demo fleet, a config file of its own.
 * The walk-through of docs/cli.md: log in, see capacity, create a GPU VM and watch
 * capacity drop, delete it and watch capacity return; then the failure cases.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { createUser, login } from '../support/api';
import { typeCheck } from '../support/doc-examples';
import { ROOT, ServerHandle, freePort, startServer } from '../support/server-process';
import { newSshPublicKey } from '../support/ssh-keys';

jest.setTimeout(60_000);

const BIN = join(ROOT, 'libs', 'cli', 'bin', 'vmplane.js');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface CapacityRow {
  gpu_model: string;
  region: string;
  total: number;
  allocated: number;
  free: number;
}

describe('the vmplane CLI against the real server', () => {
  let server: ServerHandle;
  let home: string;
  let configFile: string;

  /** Runs the CLI with a clean environment: its own HOME and config file, the API from VMPLANE_API. */
  function vmplane(args: string[], options: { input?: string; env?: Record<string, string | undefined> } = {}): Promise<Result> {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: home, VMPLANE_CONFIG: configFile, VMPLANE_API: server.url };
    for (const [key, value] of Object.entries(options.env ?? {})) {
      if (value === undefined) delete env[key];
      else env[key] = value;
    }
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, ...args], { env, cwd: home, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('error', reject);
      const timer = setTimeout(() => child.kill('SIGKILL'), 50_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
      child.stdin.end(options.input ?? '');
    });
  }

  async function ok(args: string[], options?: Parameters<typeof vmplane>[1]): Promise<Result> {
    const result = await vmplane(args, options);
    if (result.code !== 0) throw new Error(`vmplane ${args.join(' ')} exited ${result.code}\n${result.stderr}`);
    return result;
  }

  async function json<T>(args: string[], options?: Parameters<typeof vmplane>[1]): Promise<T> {
    return JSON.parse((await ok([...args, '--output', 'json'], options)).stdout) as T;
  }

  /** The one line a failing command prints. */
  function expectOneLineError(result: Result, code: number, pattern: RegExp): void {
    expect({ code: result.code, stdout: result.stdout }).toEqual({ code, stdout: '' });
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^vmplane: /);
    expect(lines[0]).toMatch(pattern);
  }

  const h100 = async (): Promise<{ free: number; allocated: number }> => {
    const rows = (await json<CapacityRow[]>(['capacity'])).filter((r) => r.gpu_model === 'h100-80gb');
    return { free: rows.reduce((s, r) => s + r.free, 0), allocated: rows.reduce((s, r) => s + r.allocated, 0) };
  };

  beforeAll(async () => {
    // Provisioning takes a moment, so the progress has stages to show.
    server = await startServer({ env: { SDK_LATENCY_MS: '200' } });
    home = mkdtempSync(join(tmpdir(), 'vmplane-cli-'));
    configFile = join(home, 'config', 'vmplane', 'config.json');
  });
  afterAll(() => server?.stop());

  it('prints help and its version, and exits 0', async () => {
    const help = await ok(['--help']);
    for (const command of ['login', 'capacity', 'ops', 'vm']) expect(help.stdout).toContain(command);
    expect(help.stdout).toContain('VMPLANE_API');
    const vmHelp = await ok(['vm', '--help']);
    for (const command of ['create', 'list', 'show', 'delete']) expect(vmHelp.stdout).toContain(command);
    const version = await ok(['--version']);
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  });

  it('refuses to work before login: exit 3, one line naming the cause', async () => {
    expectOneLineError(await vmplane(['vm', 'list']), 3, /not_logged_in: .*vmplane login/);
  });

  it('login --password-stdin stores the token in a 0600 config file', async () => {
    const wrong = await vmplane(['login', '--username', 'testuser', '--password-stdin'], { input: 'nope\n' });
    expectOneLineError(wrong, 3, /^vmplane: \w+: /);
    expect(existsSync(configFile)).toBe(false);

    const result = await ok(['login', '--username', 'testuser', '--password-stdin'], { input: 'testpassword\n' });
    expect(result.stdout).toContain(`Logged in to ${server.url} as testuser`);
    expect(statSync(configFile).mode & 0o777).toBe(0o600);
    const saved = JSON.parse(readFileSync(configFile, 'utf8'));
    expect(saved.credentials[server.url]).toEqual({ username: 'testuser', token: expect.any(String), expires_at: expect.any(String) });
    expect(readFileSync(configFile, 'utf8')).not.toContain('testpassword');
  });

  it('keeps one login for localhost and 127.0.0.1, with or without a trailing slash', async () => {
    const localhost = server.url.replace('127.0.0.1', 'localhost');
    const viaLocalhost = await ok(['login', '--api', `${localhost}/`, '--username', 'testuser', '--password-stdin'], { input: 'testpassword\n' });
    expect(viaLocalhost.stdout).toContain(`Logged in to ${localhost} as testuser`);
    expect(Object.keys(JSON.parse(readFileSync(configFile, 'utf8')).credentials)).toEqual([server.url]);
    await ok(['capacity', '--api', `${server.url}/`]);
    await ok(['capacity', '--api', localhost]);
  });

  it('without a terminal, login needs --password-stdin (usage error, exit 2)', async () => {
    expectOneLineError(await vmplane(['login', '--username', 'testuser']), 2, /--password-stdin/);
  });

  it('login: create a GPU VM and watch capacity drop, delete it and watch capacity return', async () => {
    const table = await ok(['capacity']);
    expect(table.stdout.split('\n')[0]).toMatch(/^GPU MODEL\s+REGION\s+TOTAL\s+ALLOCATED\s+FREE\s+UNAVAILABLE\s+LARGEST PLACEABLE\s+PROFILES \(FIT NOW\)$/);
    expect(table.stdout).toMatch(/^h100-80gb\s+us-east-1\s+8\s+0\s+8\s+0\s+8\s+-$/m);
    const before = await h100();

    const created = await ok(['vm', 'create', 'cli-gpu', '--cpus', '2', '--memory', '4096', '--disk', '50', '--gpus', '1', '--gpu-model', 'h100-80gb', '--label', 'x']);
    // Progress on stderr, the VM on stdout.
    expect(created.stderr).toMatch(/Creating VM cli-gpu \([0-9a-f-]{36}\): provisioning/);
    expect(created.stderr).toMatch(/running \(calling_hypervisor/);
    expect(created.stderr).toMatch(/VM cli-gpu is created \(power: running\) in/);
    expect(created.stdout).toMatch(/^Status\s+created$/m);
    expect(created.stdout).toMatch(/^GPUs\s+1×h100-80gb$/m);
    // Host names are for admins: a member sees "-", as docs/cli.md shows.
    expect(created.stdout).toMatch(/^Host\s+-$/m);
    const id = /^ID\s+([0-9a-f-]{36})$/m.exec(created.stdout)![1];

    expect(await h100()).toEqual({ free: before.free - 1, allocated: before.allocated + 1 });

    const list = await ok(['vm', 'list']);
    expect(list.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+STATUS\s+POWER\s+CPUS\s+MEMORY\s+DISK\s+GPUS\s+REGION\s+HOST\s+LABELS\s+CREATED$/);
    expect(list.stdout).toMatch(new RegExp(`^${id}\\s+cli-gpu\\s+created\\s+running\\s+2\\s+4096 MiB\\s+50 GiB\\s+1×h100-80gb\\s`, 'm'));
    const listed = await json<{ id: string; status: string }[]>(['vm', 'list']);
    expect(listed).toEqual([expect.objectContaining({ id, status: 'created' })]);

    const shown = await json<{ id: string; status: string; labels: string[]; gpus: { model: string }[] }>(['vm', 'show', id]);
    expect(shown).toMatchObject({ id, status: 'created', labels: ['x'], gpus: [{ model: 'h100-80gb' }] });
    expect((await ok(['vm', 'show', id])).stdout).toMatch(/^Name\s+cli-gpu$/m);

    const ops = await ok(['ops', id]);
    expect(ops.stdout).toMatch(/^ID\s+ACTION\s+STATUS\s+STAGE\s+ATTEMPTS\s+ERROR\s+CREATED\s+FINISHED$/m);
    expect(ops.stdout).toMatch(/\screate\s+succeeded\s+done\s/);

    const deleted = await ok(['vm', 'delete', id]);
    expect(deleted.stderr).toMatch(/VM cli-gpu is deleted in/);
    expect(deleted.stdout).toMatch(/^Status\s+deleted$/m);
    expect(await h100()).toEqual(before);

    const opsJson = await json<{ action: string; status: string }[]>(['ops', id]);
    expect(opsJson.map((op) => [op.action, op.status])).toEqual([
      ['delete', 'succeeded'],
      ['create', 'succeeded'],
    ]);
    expect(await json<unknown[]>(['vm', 'list'])).toEqual([]);
    expect((await ok(['vm', 'list'])).stdout).toBe('No VMs.\n');
  });

  it('vm create --gpu-profile: a MIG slice of an H200, shown with its GPU and slots; capacity lists the profiles that fit', async () => {
    expect((await ok(['capacity'])).stdout).toMatch(/^h200-141gb\s+us-east-1\s+2\s+0\s+2\s+0\s+0\s+1g\.18gb:14 1g\.18gb\+me:2 1g\.35gb:8 2g\.35gb:6 3g\.71gb:4 4g\.71gb:2 7g\.141gb:2$/m);
    const created = await ok(['vm', 'create', 'cli-slice', '--gpu-profile', '3g.71gb', '--gpu-model', 'h200-141gb']);
    expect(created.stdout).toMatch(/^GPUs\s+3g\.71gb of h200-141gb \(GPU \d GPU-[0-9a-f-]+, slots 4,5,6,7\)$/m);
    const id = /^ID\s+([0-9a-f-]{36})$/m.exec(created.stdout)![1];
    expect((await ok(['capacity'])).stdout).toMatch(/^h200-141gb\s+us-east-1\s+2\s+1\s+1\s+0\s+0\s+.*3g\.71gb:3 4g\.71gb:2 7g\.141gb:1$/m);
    const bad = await vmplane(['vm', 'create', 'cli-bad-slice', '--gpu-profile', '9g.1gb', '--gpu-model', 'h200-141gb']);
    expectOneLineError(bad, 1, /gpu_profile 9g\.1gb is not a profile of h200-141gb; valid: 1\/8, 1\/4, 1\/2, 1, 1g\.18gb/);
    await ok(['vm', 'delete', id]);
  });

  it('stop, start, reboot, resize, shelve and unshelve a VM, each waiting for its operation; a refused action is one line', async () => {
    const { id } = await json<{ id: string }>(['vm', 'create', 'cli-life', '--gpus', '1', '--gpu-model', 'l40s-48gb']);
    const l40s = async () => (await json<CapacityRow[]>(['capacity'])).filter((r) => r.gpu_model === 'l40s-48gb').reduce((s, r) => s + r.allocated, 0);
    const held = await l40s();

    const stopped = await ok(['vm', 'stop', id]);
    expect(stopped.stderr).toMatch(/Stopping VM cli-life \([0-9a-f-]{36}\)/);
    expect(stopped.stderr).toMatch(/VM cli-life is created \(power: shut_off\)/);
    expect(stopped.stdout).toMatch(/^Power\s+shut_off$/m);
    expect(await l40s()).toBe(held);
    // Stopping or rebooting a stopped VM is refused, naming what is allowed now.
    expectOneLineError(await vmplane(['vm', 'stop', id]), 1, /^vmplane: invalid_state: Cannot stop a VM that is created and shut off; allowed now: .*start/);
    expectOneLineError(await vmplane(['vm', 'reboot', id]), 1, /^vmplane: invalid_state: Cannot reboot .*allowed now: .*start/);

    const resized = await json<{ cpu_cores: number; memory: number }>(['vm', 'resize', id, '--cpus', '4', '--memory', '8192']);
    expect(resized).toMatchObject({ cpu_cores: 4, memory: 8192 });
    expect((await json<{ power_state: string }>(['vm', 'start', id])).power_state).toBe('running');
    expect((await ok(['vm', 'reboot', id, '--hard'])).stdout).toMatch(/^Power\s+running$/m);

    const shelved = await json<{ status: string; power_state: string }>(['vm', 'shelve', id]);
    expect(shelved).toMatchObject({ status: 'shelved', power_state: 'shut_off' });
    expect(await l40s()).toBe(held - 1);
    const unshelved = await json<{ status: string; power_state: string; cpu_cores: number }>(['vm', 'unshelve', id, '--wait-for-capacity', '1m']);
    expect(unshelved).toMatchObject({ status: 'created', power_state: 'running', cpu_cores: 4 });
    expect(await l40s()).toBe(held);

    const noWait = await vmplane(['vm', 'stop', id, '--no-wait']);
    expect(noWait.code).toBe(0);
    expect(noWait.stderr).toMatch(/stop accepted; follow it with: vmplane ops /);
    let ops: { action: string; status: string }[] = [];
    for (let i = 0; i < 100; i++) {
      ops = await json<{ action: string; status: string }[]>(['ops', id]);
      if (ops[0].status === 'succeeded') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(ops.map((op) => `${op.action}:${op.status}`)).toEqual(
      ['stop', 'unshelve', 'shelve', 'reboot', 'start', 'resize', 'stop', 'create'].map((action) => `${action}:succeeded`),
    );
    await ok(['vm', 'delete', id]);
    expect(await l40s()).toBe(held - 1);
  });

  it('ssh-key add from a file, vm create --ssh-key --user-data, vm console shows the guest line; ssh-key delete', async () => {
    const keyFile = join(home, 'id_ed25519.pub');
    writeFileSync(keyFile, `${newSshPublicKey('carol@cli')}\n`);
    const added = await ok(['ssh-key', 'add', 'cli-key', keyFile]);
    expect(added.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+TYPE\s+FINGERPRINT\s+COMMENT$/);
    expect(added.stdout).toMatch(/cli-key\s+ed25519\s+SHA256:\S+\s+carol@cli/);
    const keys = await json<{ id: string; name: string }[]>(['ssh-key', 'list']);
    expect(keys.map((k) => k.name)).toEqual(['cli-key']);
    expectOneLineError(await vmplane(['ssh-key', 'add', 'bad-key', keyFile.replace('.pub', '.missing')]), 2, /^vmplane: key file \S+id_ed25519\.missing cannot be read: ENOENT$/);
    const bad = join(home, 'bad.pub');
    writeFileSync(bad, 'ssh-ed25519 not-a-key\n');
    expectOneLineError(await vmplane(['ssh-key', 'add', 'bad-key', bad]), 1, /public_key is not an OpenSSH public key/);

    const userData = join(home, 'user-data.yaml');
    writeFileSync(userData, '#cloud-config\n');
    const vm = await json<{ id: string; ssh_keys: { name: string }[]; user_data_bytes: number }>(['vm', 'create', 'cli-keys', '--ssh-key', 'cli-key', '--user-data', userData]);
    expect(vm).toMatchObject({ ssh_keys: [{ name: 'cli-key' }], user_data_bytes: 14 });
    const console = await ok(['vm', 'console', vm.id]);
    expect(console.stdout).toContain(`vmplane-guest ready instance-id=${vm.id} keys=carol@cli`);
    await ok(['vm', 'delete', vm.id]);
    expect((await ok(['ssh-key', 'delete', keys[0].id])).stdout).toBe(`Deleted SSH key ${keys[0].id}\n`);
    expect(await json<unknown[]>(['ssh-key', 'list'])).toEqual([]);
  });

  it('--no-wait returns while the VM is still provisioning; --output json parses everywhere', async () => {
    const vm = await json<{ id: string; status: string }>(['vm', 'create', 'cli-nowait', '--no-wait']);
    expect(vm.status).toBe('provisioning');
    // A VM is deleted once it is created (the API answers 409 while it provisions).
    for (let i = 0; i < 100 && (await json<{ status: string }>(['vm', 'show', vm.id])).status === 'provisioning'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const done = await json<{ status: string }>(['vm', 'delete', vm.id]);
    expect(done.status).toBe('deleted');
    const capacity = await json<CapacityRow[]>(['capacity']);
    expect(capacity.map((r) => r.gpu_model)).toEqual(expect.arrayContaining(['h100-80gb', 'a100-80gb', 'l40s-48gb', 'l4-24gb']));
    // The global option works before the command as well as after it.
    expect(JSON.parse((await ok(['--output', 'json', 'capacity'])).stdout)).toEqual(capacity);
  });

  it('vm update renames and relabels; --clear-labels removes the labels; nothing to change is a usage error', async () => {
    const vm = await json<{ id: string }>(['vm', 'create', 'cli-update', '--label', 'before']);
    expect(await json(['vm', 'update', vm.id, '--name', 'cli-renamed', '--label', 'a', '--label', 'b'])).toMatchObject({ name: 'cli-renamed', labels: ['a', 'b'] });
    expect(await json(['vm', 'update', vm.id, '--clear-labels'])).toMatchObject({ name: 'cli-renamed', labels: [] });
    expectOneLineError(await vmplane(['vm', 'update', vm.id]), 2, /^vmplane: usage: nothing to change/);
    expectOneLineError(await vmplane(['vm', 'update', vm.id, '--name', 'Bad_Name']), 1, /^vmplane: validation_failed: .*name/);
    expect((await json<{ status: string }>(['vm', 'delete', vm.id])).status).toBe('deleted');
  });

  it('VMPLANE_TOKEN overrides the saved token', async () => {
    const created = await json<{ id: string }>(['vm', 'create', 'cli-token']);
    const elsewhere = join(home, 'empty', 'config.json');
    const asAdmin = { VMPLANE_CONFIG: elsewhere, VMPLANE_TOKEN: await login(server.url, 'admin', 'adminpassword') };
    expect(await json<{ id: string }>(['vm', 'show', created.id], { env: asAdmin })).toMatchObject({ id: created.id });
    const asOtherUser = { VMPLANE_TOKEN: await createUser(server.url, asAdmin.VMPLANE_TOKEN, 'cli-other') };
    expect(await json<unknown[]>(['vm', 'list'], { env: asOtherUser })).toEqual([]);
    expectOneLineError(await vmplane(['vm', 'show', created.id], { env: asOtherUser }), 4, /not_found/);
    await ok(['vm', 'delete', created.id]);
    expectOneLineError(await vmplane(['vm', 'list'], { env: { VMPLANE_TOKEN: 'not-a-token' } }), 3, /^vmplane: \w+: .*\(run: vmplane login\)$/);
  });

  it('fails with one line and a distinct exit code: not found 4, no capacity 5, never possible 1, bad input 1, usage 2, unreachable 1', async () => {
    expectOneLineError(await vmplane(['vm', 'show', '00000000-0000-7000-8000-000000000000']), 4, /^vmplane: not_found: /);
    expectOneLineError(await vmplane(['ops', '00000000-0000-7000-8000-000000000000']), 4, /^vmplane: not_found: /);

    // Both L4 hosts hold two; one of them taken, four L4s fit nowhere now, but would on an idle fleet.
    const held = await json<{ id: string }>(['vm', 'create', 'cli-l4', '--gpus', '2', '--gpu-model', 'l4-24gb', '--region', 'us-east-1']);
    const notNow = await vmplane(['vm', 'create', 'cli-l4-2', '--gpus', '2', '--gpu-model', 'l4-24gb', '--region', 'us-east-1']);
    expectOneLineError(notNow, 5, /^vmplane: insufficient_capacity: .*\(alternatives: \d+×[a-z0-9-]+ in [a-z0-9-]+/);
    await ok(['vm', 'delete', held.id]);
    const never = await vmplane(['vm', 'create', 'cli-huge', '--gpus', '8', '--gpu-model', 'l4-24gb']);
    expectOneLineError(never, 1, /^vmplane: unsatisfiable: .*the most on one host is 2/);

    expectOneLineError(await vmplane(['vm', 'create', 'Not_A_Label']), 1, /^vmplane: validation_failed: .*name/);
    expectOneLineError(await vmplane(['vm', 'create', 'x', '--cpus', 'many']), 2, /--cpus/);
    expectOneLineError(await vmplane(['vm', 'frobnicate']), 2, /unknown command/);
    expectOneLineError(await vmplane(['capacity', '--output', 'yaml']), 2, /table, json/);

    const closed = `http://127.0.0.1:${await freePort()}`;
    expectOneLineError(await vmplane(['capacity', '--api', closed], { env: { VMPLANE_TOKEN: 'x' } }), 1, /cannot reach the API at .*ECONNREFUSED/);
    // Never logged in there: that the server is down comes first.
    const notLoggedIn = { VMPLANE_CONFIG: join(home, 'nowhere', 'config.json') };
    expectOneLineError(await vmplane(['capacity', '--api', closed], { env: notLoggedIn }), 1, new RegExp(`^vmplane: cannot reach the API at ${closed}: ECONNREFUSED`));
    expectOneLineError(await vmplane(['capacity'], { env: notLoggedIn }), 3, new RegExp(`^vmplane: not_logged_in: no saved token for ${server.url}`));
  });

  it('refuses an --api or VMPLANE_API that is not an http(s) URL, as a usage error', async () => {
    expectOneLineError(await vmplane(['capacity', '--api', 'notaurl']), 2, /--api.*'notaurl' is invalid\. Expected an http:\/\/ or https:\/\/ URL; did you mean http:\/\/notaurl\?/);
    expectOneLineError(await vmplane(['vm', 'list'], { env: { VMPLANE_API: 'ftp://example.com' } }), 2, /'ftp:\/\/example\.com' from env 'VMPLANE_API' is invalid/);
    expectOneLineError(await vmplane(['capacity', '--api', 'http://u:p@127.0.0.1:8000']), 2, /no user name or password/);
  });

  it('escapes control characters in all it prints, even from records the API would refuse today', async () => {
    const name = 'cli-\u001b[31mred\u009b2J';
    const label = '\u001b]0;pwned\u0007\u001b[2J';
    const { id } = await json<{ id: string }>(['vm', 'create', 'cli-hostile', '--label', 'x']);
    await server.execute('UPDATE vms SET name = $1, labels = $2 WHERE id = $3', [name, JSON.stringify([label, 'del\u007f']), id]);
    const raw = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;
    const outputs: Result[] = [];
    const run = async (args: string[]) => {
      const result = await ok(args);
      outputs.push(result);
      return result.stdout;
    };

    const row = (await run(['vm', 'list'])).split('\n').find((line) => line.startsWith(id));
    expect(row).toContain(' cli-\\x1b[31mred\\x9b2J ');
    expect(row).toContain(' \\x1b]0;pwned\\x07\\x1b[2J,del\\x7f ');
    expect(await run(['vm', 'show', id])).toMatch(/^Labels +\\x1b\]0;pwned\\x07\\x1b\[2J, del\\x7f$/m);
    for (const args of [['vm', 'list', '-o', 'json'], ['vm', 'show', id, '-o', 'json']]) {
      const printed = await run(args);
      expect(printed).toContain('"\\u001b]0;pwned\\u0007\\u001b[2J"');
      expect(printed).toContain('"cli-\\u001b[31mred\\u009b2J"');
      const parsed = JSON.parse(printed) as { name: string; labels: string[] } | { name: string; labels: string[] }[];
      expect(Array.isArray(parsed) ? parsed[0] : parsed).toMatchObject({ name, labels: [label, 'del\u007f'] });
    }
    const deleted = await vmplane(['vm', 'delete', id]);
    outputs.push(deleted);
    expect(deleted.code).toBe(0);
    expect(deleted.stderr).toContain('Deleting VM cli-\\x1b[31mred\\x9b2J');
    // commander's own messages quote what was typed.
    const unknown = await vmplane(['vm', '\u001b]0;pwned\u0007']);
    outputs.push(unknown);
    expectOneLineError(unknown, 2, /unknown command '\\x1b\]0;pwned\\x07'/);
    for (const { stdout, stderr } of outputs) {
      expect(stdout).not.toMatch(raw);
      expect(stderr).not.toMatch(raw);
    }
  });

  it('host list, rename, label and delete (admin): a host with a VM is refused in one line; a removed host is listed only with --include-removed; members get exit 3', async () => {
    const adminToken = await login(server.url, 'admin', 'adminpassword');
    const asAdmin = { VMPLANE_TOKEN: adminToken };
    const registered = await fetch(`${server.url}/hosts`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'cli-host', region: 'cli-region', cpu_cores: 16, memory_mib: 65536, disk_gib: 500 }),
    });
    expect(registered.status).toBe(201);
    const { id } = (await registered.json()) as { id: string };

    const listed = await ok(['host', 'list'], { env: asAdmin });
    expect(listed.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+REGION\s+STATE\s+CPUS\s+GPUS\s+LABELS$/);
    expect(listed.stdout).toMatch(new RegExp(`^${id}\\s+cli-host\\s+cli-region\\s+active\\s+0/16\\s+-\\s+-$`, 'm'));
    expect(listed.stdout).toMatch(/\s8×h100-80gb\s/);

    expect((await ok(['host', 'rename', id, 'cli-host-2'], { env: asAdmin })).stdout).toMatch(/\scli-host-2\s/);
    expect(await json<{ labels: string[] }>(['host', 'label', id, 'rack=a12', 'nvlink'], { env: asAdmin })).toMatchObject({ name: 'cli-host-2', labels: ['rack=a12', 'nvlink'] });
    expectOneLineError(await vmplane(['host', 'label', id], { env: asAdmin }), 2, /--clear/);
    expect(await json<{ labels: string[] }>(['host', 'label', id, '--clear'], { env: asAdmin })).toMatchObject({ labels: [] });

    const vm = await json<{ id: string }>(['vm', 'create', 'cli-on-host', '--region', 'cli-region']);
    expectOneLineError(await vmplane(['host', 'delete', id], { env: asAdmin }), 1, /^vmplane: host_has_vms: Host cli-host-2 still has 1 live and 0 shelved VM\(s\)/);
    expectOneLineError(await vmplane(['host', 'delete', id]), 3, /^vmplane: forbidden: /);
    await ok(['vm', 'delete', vm.id]);

    expect((await ok(['host', 'delete', id], { env: asAdmin })).stdout).toBe(`Removed host ${id}; it stays listed with: vmplane host list --include-removed\n`);
    expect((await json<{ id: string }[]>(['host', 'list'], { env: asAdmin })).map((h) => h.id)).not.toContain(id);
    expect(await json<{ id: string; state: string }[]>(['host', 'list', '--include-removed'], { env: asAdmin })).toContainEqual(expect.objectContaining({ id, state: 'removed' }));
    expectOneLineError(await vmplane(['host', 'rename', id, 'again'], { env: asAdmin }), 1, /^vmplane: host_removed: /);
  });

  it("docs/cli.md's TypeScript client example compiles with the project's tsconfig and runs as documented", async () => {
    const doc = readFileSync(join(ROOT, 'docs', 'cli.md'), 'utf8');
    const code = /^```ts\n([\s\S]*?)^```$/m.exec(doc)![1];
    expect(doc).toContain('save it as `scripts/try-client.ts`');
    expect(doc).toContain('node dist/scripts/try-client.js');
    expect(typeCheck(code, 'scripts/try-client.ts')).toEqual([]);
    // The check fails on what the example used to be: top-level await in a CommonJS project (TS1378).
    expect(typeCheck("import { login } from '../libs/client/src';\nconst t = await login('http://x', 'a', 'b');\nconsole.log(t);\n", 'scripts/try-client.ts').join('\n')).toContain('TS1378');

    // As `npm run build` compiles it into dist/scripts/, where ../libs/client/src is the built client.
    const js = ts.transpileModule(code, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText;
    const dir = mkdtempSync(join(tmpdir(), 'vmplane-ts-client-'));
    const file = join(dir, 'try-client.js');
    const client = join(ROOT, 'dist', 'libs', 'client', 'src');
    expect(js).toContain('require("../libs/client/src")');
    writeFileSync(file, js.replace('require("../libs/client/src")', `require(${JSON.stringify(client)})`));
    const run = await new Promise<Result>((resolve) => {
      const child = spawn(process.execPath, [file], { env: { PATH: process.env.PATH, VMPLANE_API: server.url }, cwd: ROOT });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (exit) => resolve({ code: exit, stdout, stderr }));
    });
    expect(run).toEqual({ code: 0, stdout: 'ts-vm created\nts-vm\nts-vm deleted\n', stderr: '' });
  });

  it('usage: the window, the totals and a row per VM that ran; another user’s usage is for admins', async () => {
    const created = await json<{ id: string }>(['vm', 'create', 'cli-usage', '--cpus', '1', '--memory', '512', '--disk', '1']);
    await ok(['vm', 'delete', created.id]);
    const report = await json<{ user_id: string; vm_hours: number; vms: { vm_id: string; name: string; vm_hours: number }[] }>(['usage']);
    expect(report.vms.find((vm) => vm.vm_id === created.id)).toMatchObject({ name: 'cli-usage' });
    const shown = (await ok(['usage', '--start', new Date(Date.now() - 3_600_000).toISOString()])).stdout;
    expect(shown).toMatch(/^Window\s+\S+ – \S+$/m);
    expect(shown).toMatch(/^VM\s+NAME\s+GPU\s+VM HOURS\s+GPU HOURS$/m);
    expect(shown).toMatch(new RegExp(`^${created.id}\\s+cli-usage\\s+-\\s+[0-9.]+\\s+0$`, 'm'));
    expectOneLineError(await vmplane(['usage', '--user', report.user_id]), 3, /forbidden|403/);
    expectOneLineError(await vmplane(['usage', '--start', 'yesterday']), 1, /start/);
  });

  it('logout forgets the token', async () => {
    await ok(['logout']);
    expectOneLineError(await vmplane(['capacity']), 3, /not_logged_in/);
    writeFileSync(configFile, '{ not json');
    expectOneLineError(await vmplane(['capacity']), 1, /config_invalid/);
  });
});
