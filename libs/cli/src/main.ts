/**
 * `vmplane`, the command-line client: commander for the command line, the generated
 * client (libs/client) for every request. Usage and exit codes: docs/cli.md.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  FINAL_VM_STATUSES,
  createVmplaneClient,
  login,
  operationIdFromLocation,
  unwrap,
  waitForOperation,
  type CreateVmDto,
  type OperationResponseDto,
  type VmResponseDto,
  type VmStatus,
  type VmplaneClient,
} from '../../client/src';
import { DEFAULT_API, configPath, parseApiUrl, readConfig, removeCredentials, resolveToken, saveCredentials, writeConfig } from './config';
import { CliError, EXIT, describeError, exitCodeForProblem } from './errors';
import { CAPACITY_COLUMNS, HOST_COLUMNS, IMAGE_COLUMNS, OPERATION_COLUMNS, SSH_KEY_COLUMNS, Progress, VM_COLUMNS, consoleLines, escapeControl, escapeControlKeepLines, safeJson, table, usageReport, vmDetails } from './format';
import { promptLine, promptSecret, readStdin } from './prompt';

type OutputFormat = 'table' | 'json';
interface GlobalOptions {
  api: string;
  output: OutputFormat;
}

const VM_STATUSES = ['provisioning', 'created', 'shelved', 'deleting', 'deleted', 'failed'] as const satisfies readonly VmStatus[];
// Fails to compile when the API gains a status this list lacks.
const _allStatuses: Exclude<VmStatus, (typeof VM_STATUSES)[number]> extends never ? true : never = true;
void _allStatuses;

function version(): string {
  let dir = __dirname;
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'vmplane' && pkg.version) return pkg.version;
    }
    const parent = dirname(dir);
    if (parent === dir) return '0.0.0';
    dir = parent;
  }
}

function integer(name: string, min: number, max: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}.`);
    }
    return parsed;
  };
}

/** A duration such as 90, 90s, 30m or 2h, in seconds. */
export function duration(name: string, max: number) {
  return (value: string): number => {
    const match = /^(\d+)\s*([smh]?)$/.exec(value.trim());
    const seconds = match ? Number(match[1]) * ({ '': 1, s: 1, m: 60, h: 3600 } as Record<string, number>)[match[2]] : NaN;
    if (!(seconds >= 1 && seconds <= max)) throw new InvalidArgumentError(`${name} must be a duration such as 90s, 30m or 2h, at most ${max} s.`);
    return seconds;
  };
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** What every command needs: where the API is, how to print, and a client. */
class Context {
  constructor(
    readonly options: GlobalOptions,
    readonly env: NodeJS.ProcessEnv,
  ) {}

  get api(): string {
    return this.options.api;
  }

  /**
   * A client that sends the token (VMPLANE_TOKEN or the saved one). Without a usable token
   * the request still goes out, so that a server that cannot be reached is reported as
   * such; its 401 is then explained as not_logged_in or token_expired.
   */
  client(): VmplaneClient {
    let token: string | undefined;
    let missing: CliError | undefined;
    try {
      token = resolveToken(this.api, this.env, configPath(this.env));
    } catch (error) {
      if (!(error instanceof CliError) || error.exitCode !== EXIT.auth) throw error;
      missing = error;
    }
    const explain401 = async (request: Request): Promise<Response> => {
      const response = await fetch(request);
      if (missing && response.status === 401) throw missing;
      return response;
    };
    return createVmplaneClient({ baseUrl: this.api, token, fetch: explain401 });
  }

  print(json: unknown, text: () => string): void {
    process.stdout.write(this.options.output === 'json' ? `${safeJson(json)}\n` : escapeControlKeepLines(text()));
  }
}

/** A message on stderr, between the results on stdout. */
function note(message: string): void {
  process.stderr.write(`${escapeControl(message)}\n`);
}

async function allPages<T>(fetchPage: (cursor: string | undefined) => Promise<{ items: T[]; next_cursor: string | null }>): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await fetchPage(cursor);
    items.push(...page.items);
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  return items;
}

function describeOperation(op: OperationResponseDto): string {
  if (op.status === 'waiting_for_capacity') return `waiting for capacity (position ${op.queue_position ?? '?'} in its queue, until ${op.deadline_at ?? '?'})`;
  const attempt = op.attempts > 0 ? `, attempt ${op.attempts}` : '';
  return `${op.status} (${op.stage}${attempt})`;
}

/**
 * Follows a 202 answer to the end: polls the operation (Location: /operations/{id}) or,
 * without one, the VM; shows progress on stderr; returns the VM as it ends up.
 */
async function follow(
  client: VmplaneClient,
  vm: VmResponseDto,
  location: string | null,
  verb: string,
  timeoutSeconds: number,
): Promise<{ vm: VmResponseDto; operation: OperationResponseDto | null }> {
  const progress = new Progress();
  const label = `${verb} VM ${vm.name} (${vm.id})`;
  progress.update(`${label}: ${vm.status}`);
  const operationId = operationIdFromLocation(location);
  let operation: OperationResponseDto | null = null;
  if (operationId) {
    operation = await waitForOperation(client, operationId, {
      timeoutMs: timeoutSeconds * 1000,
      onPoll: (op) => progress.update(`${label}: ${describeOperation(op)}`),
    });
  }
  const deadline = Date.now() + timeoutSeconds * 1000;
  let current = unwrap(await client.GET('/vms/{id}', { params: { path: { id: vm.id } } }));
  while (!FINAL_VM_STATUSES.includes(current.status)) {
    if (Date.now() > deadline) {
      throw new CliError(`timeout: VM ${vm.id} is still ${current.status} after ${timeoutSeconds} s; follow it with: vmplane ops ${vm.id}`);
    }
    progress.update(`${label}: ${current.status}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    current = unwrap(await client.GET('/vms/{id}', { params: { path: { id: vm.id } } }));
  }
  progress.done(`VM ${current.name} is ${current.status}${current.status === 'deleted' || !current.power_state ? '' : ` (power: ${current.power_state})`}`);
  return { vm: current, operation };
}

/** A VM that ended `failed` is a failure of the command, named by its operation's error. */
function failIfFailed(vm: VmResponseDto, operation: OperationResponseDto | null): void {
  if (vm.status !== 'failed' && operation?.status !== 'failed') return;
  const code = operation?.error?.code ?? 'vm_failed';
  const message = operation?.error?.message ?? vm.status_reason ?? 'the VM failed';
  throw new CliError(`${code}: ${message} (VM ${vm.id} is ${vm.status}; see: vmplane ops ${vm.id})`, exitCodeForProblem(operation?.http_error_status_code ?? 0, code));
}

export function buildProgram(env: NodeJS.ProcessEnv = process.env): Command {
  const program = new Command('vmplane');
  const context = () => new Context(program.opts<GlobalOptions>(), env);

  program
    .description('Command-line client for vmplane, the GPU VM control plane (docs/cli.md)')
    .version(version(), '-V, --version')
    .addOption(new Option('--api <url>', 'API root URL').env('VMPLANE_API').default(DEFAULT_API).argParser(parseApiUrl))
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({
      outputError: (message, write) => write(`vmplane: ${escapeControl(message.replace(/^error: /, '').trim())} (see: vmplane --help)\n`),
    });

  program
    .command('login')
    .description('Sign in and save the token (mode 0600) for later commands')
    .option('-u, --username <username>', 'user name (asked on the terminal when absent)')
    .option('--password-stdin', 'read the password from standard input (for scripts)')
    .action(async (options: { username?: string; passwordStdin?: boolean }) => {
      const ctx = context();
      const interactive = Boolean(process.stdin.isTTY);
      let username = options.username;
      if (!username) {
        if (!interactive || options.passwordStdin) throw new CliError('usage: --username is required without a terminal (or with --password-stdin)', EXIT.usage);
        username = (await promptLine('Username: ')).trim();
      }
      let password: string;
      if (options.passwordStdin) password = await readStdin();
      else if (interactive) password = await promptSecret(`Password for ${escapeControl(username)}: `);
      else throw new CliError('usage: no terminal to ask for the password; pipe it in with --password-stdin', EXIT.usage);
      if (!username || !password) throw new CliError('usage: the username and the password must not be empty', EXIT.usage);

      const token = await login(createVmplaneClient({ baseUrl: ctx.api }), username, password);
      const path = configPath(env);
      const config = readConfig(path);
      const expiresAt = new Date(Date.now() + token.expires_in * 1000).toISOString();
      saveCredentials(config, ctx.api, { username, token: token.access_token, expires_at: expiresAt });
      writeConfig(path, config);
      ctx.print({ api: ctx.api, username, expires_at: expiresAt, config: path }, () => `Logged in to ${ctx.api} as ${username} until ${expiresAt}; token saved in ${path}\n`);
    });

  program
    .command('logout')
    .description('Forget the saved token for this API')
    .action(() => {
      const ctx = context();
      const path = configPath(env);
      const config = readConfig(path);
      const had = removeCredentials(config, ctx.api);
      if (had) writeConfig(path, config);
      ctx.print({ api: ctx.api, logged_out: had }, () => (had ? `Logged out of ${ctx.api}\n` : `Not logged in to ${ctx.api}\n`));
    });

  program
    .command('capacity')
    .description('GPU models per region with total, allocated and free counts')
    .action(async () => {
      const ctx = context();
      const capacity = unwrap(await ctx.client().GET('/capacity'));
      ctx.print(capacity.items, () => (capacity.items.length === 0 ? 'No GPUs in the fleet.\n' : table(capacity.items, CAPACITY_COLUMNS)));
    });

  program
    .command('usage')
    .description('VM-hours and GPU-hours over a window (default: the last 30 days), per GPU model and per VM')
    .option('--start <time>', 'start of the window, ISO 8601 (e.g. 2026-11-01T00:00:00Z)')
    .option('--end <time>', 'end of the window, ISO 8601 (default: now)')
    .option('--user <id>', "another user's usage (admin)")
    .action(async (options: { start?: string; end?: string; user?: string }) => {
      const ctx = context();
      const query = { ...(options.start ? { start: options.start } : {}), ...(options.end ? { end: options.end } : {}) };
      const client = ctx.client();
      const report = options.user
        ? unwrap(await client.GET('/users/{id}/usage', { params: { path: { id: options.user }, query } }))
        : unwrap(await client.GET('/usage', { params: { query } }));
      ctx.print(report, () => usageReport(report));
    });

  program
    .command('ops')
    .description("A VM's operations (create, stop, start, …, delete), newest first")
    .argument('<vm-id>', 'the VM')
    .action(async (id: string) => {
      const ctx = context();
      const client = ctx.client();
      const ops = await allPages((cursor) =>
        client.GET('/vms/{id}/operations', { params: { path: { id }, query: { limit: 200, cursor } } }).then(unwrap),
      );
      ctx.print(ops, () => table(ops, OPERATION_COLUMNS));
    });

  const vm = program.command('vm').description('Create, list, show, update, stop, start, reboot, shelve, unshelve, resize and delete VMs');

  vm.command('create')
    .description('Create a VM and wait until it is created (progress on stderr)')
    .argument('<name>', 'a DNS label: lowercase letters, digits and hyphens')
    .option('--cpus <n>', 'vCPUs', integer('--cpus', 1, 256), 2)
    .option('--memory <mib>', 'memory in MiB', integer('--memory', 256, 4_194_304), 4096)
    .option('--disk <gib>', 'disk in GiB', integer('--disk', 1, 65_536), 50)
    .option('--gpus <n>', 'number of GPUs', integer('--gpus', 0, 8), 0)
    .option('--gpu-model <model>', 'GPU model: an id such as h100-80gb, or a name such as H100 (see: vmplane capacity); any model when absent')
    .option('--gpu-profile <profile>', 'a fractional GPU instead of --gpus: a MIG profile such as 3g.71gb (with --gpu-model) or a vGPU size 1/8, 1/4, 1/2, 1 (see: vmplane capacity)')
    .option('--region <region>', 'place only in this region')
    .option('--public-ip <ip>', 'a public IPv4 or IPv6 address')
    .option('--label <label>', 'a label (repeat for more)', collect)
    .option('--image <name>', 'a registered image (see: vmplane image list); the server default when absent')
    .option('--ssh-key <name>', 'one of your SSH keys, by name (repeat for more; see: vmplane ssh-key list)', collect)
    .option('--user-data <file>', 'a cloud-init user-data file (at most 16 KiB; - reads stdin)')
    .option('--wait-for-capacity <duration>', 'when nothing fits now, wait in the capacity queue up to this long (e.g. 30m) instead of failing', duration('--wait-for-capacity', 86_400))
    .option('--no-wait', 'return at once, while the VM is still provisioning')
    .option('--timeout <seconds>', 'how long to wait', integer('--timeout', 1, 86_400), 600)
    .action(
      async (
        name: string,
        options: {
          cpus: number;
          memory: number;
          disk: number;
          gpus: number;
          gpuModel?: string;
          gpuProfile?: string;
          region?: string;
          publicIp?: string;
          label?: string[];
          image?: string;
          sshKey?: string[];
          userData?: string;
          waitForCapacity?: number;
          wait: boolean;
          timeout: number;
        },
      ) => {
        const ctx = context();
        const client = ctx.client();
        const body: CreateVmDto = { name, cpu_cores: options.cpus, memory: options.memory, disk_size: options.disk };
        if (options.gpus > 0) body.gpu_count = options.gpus;
        if (options.gpuModel) body.gpu_model = options.gpuModel;
        if (options.gpuProfile) body.gpu_profile = options.gpuProfile;
        if (options.region) body.region = options.region;
        if (options.publicIp) body.public_ip = options.publicIp;
        if (options.label) body.labels = options.label;
        if (options.image) body.image = options.image;
        if (options.sshKey) body.ssh_keys = options.sshKey;
        if (options.userData) body.user_data = await readTextFile(options.userData, '--user-data file');
        if (options.waitForCapacity) body.wait_for_capacity_seconds = options.waitForCapacity;

        const result = await client.POST('/vms', { body, headers: { Prefer: 'respond-async' } });
        let created = unwrap(result);
        let operation: OperationResponseDto | null = null;
        if (result.response.status === 202) {
          if (!options.wait) {
            note(`VM ${created.name} is ${created.status}; follow it with: vmplane vm show ${created.id}`);
          } else {
            const timeout = Math.max(options.timeout, options.waitForCapacity ?? 0);
            ({ vm: created, operation } = await follow(client, created, result.response.headers.get('location'), 'Creating', timeout));
          }
        }
        ctx.print(created, () => vmDetails(created));
        failIfFailed(created, operation);
      },
    );

  vm.command('list')
    .description('Your VMs, newest first (deleted ones only with --status deleted)')
    .addOption(new Option('--status <status>', 'only VMs in this status').choices(VM_STATUSES))
    .option('--label <label>', 'only VMs with this label')
    .action(async (options: { status?: VmStatus; label?: string }) => {
      const ctx = context();
      const client = ctx.client();
      const vms = await allPages((cursor) =>
        client.GET('/vms', { params: { query: { status: options.status, label: options.label, limit: 200, cursor } } }).then(unwrap),
      );
      ctx.print(vms, () => (vms.length === 0 ? 'No VMs.\n' : table(vms, VM_COLUMNS)));
    });

  vm.command('show')
    .description('One VM in detail')
    .argument('<id>', 'the VM id')
    .action(async (id: string) => {
      const ctx = context();
      const found = unwrap(await ctx.client().GET('/vms/{id}', { params: { path: { id } } }));
      ctx.print(found, () => vmDetails(found));
    });

  vm.command('delete')
    .description('Delete a VM and wait until it is deleted; its GPUs return to the pool')
    .argument('<id>', 'the VM id')
    .option('--no-wait', 'return at once, while the VM is still deleting')
    .option('--timeout <seconds>', 'how long to wait', integer('--timeout', 1, 86_400), 600)
    .action(async (id: string, options: { wait: boolean; timeout: number }) => {
      const ctx = context();
      const client = ctx.client();
      const result = await client.DELETE('/vms/{id}', { params: { path: { id } }, headers: { Prefer: 'respond-async' } });
      let deleted = unwrap(result);
      let operation: OperationResponseDto | null = null;
      if (result.response.status === 202) {
        if (!options.wait) {
          note(`VM ${deleted.name} is ${deleted.status}; follow it with: vmplane vm show ${deleted.id}`);
        } else {
          ({ vm: deleted, operation } = await follow(client, deleted, result.response.headers.get('location'), 'Deleting', options.timeout));
        }
      }
      ctx.print(deleted, () => vmDetails(deleted));
      failIfFailed(deleted, operation);
    });

  vm.command('update')
    .description('Rename or relabel a VM: --label replaces all its labels, --clear-labels removes them')
    .argument('<id>', 'the VM id')
    .option('--name <name>', 'the new name: a DNS label')
    .option('--label <label>', 'a label (repeat for more)', collect)
    .option('--clear-labels', 'remove every label')
    .action(async (id: string, options: { name?: string; label?: string[]; clearLabels?: boolean }) => {
      if (options.label && options.clearLabels) throw new CliError('usage: give --label or --clear-labels, not both', EXIT.usage);
      const body: { name?: string; labels?: string[] } = {};
      if (options.name !== undefined) body.name = options.name;
      if (options.label || options.clearLabels) body.labels = options.label ?? [];
      if (Object.keys(body).length === 0) throw new CliError('usage: nothing to change; give --name, --label or --clear-labels', EXIT.usage);
      const ctx = context();
      const updated = unwrap(await ctx.client().PATCH('/vms/{id}', { params: { path: { id } }, body }));
      ctx.print(updated, () => vmDetails(updated));
    });

  vm.command('console')
    .description("The tail of the VM's serial console (where a boot is debugged)")
    .argument('<id>', 'the VM id')
    .option('--bytes <n>', 'how much of the end of the log', integer('--bytes', 1, 65_536), 16_384)
    .action(async (id: string, options: { bytes: number }) => {
      const ctx = context();
      const log = unwrap(await ctx.client().GET('/vms/{id}/console', { params: { path: { id }, query: { bytes: options.bytes } }, parseAs: 'text' }));
      ctx.print({ id, console: log }, () => consoleLines(log));
    });

  lifecycleCommand(vm, context, 'stop', 'Shut a running VM down; it keeps its host, GPUs and quota', 'Stopping', () => ({}));
  lifecycleCommand(vm, context, 'start', 'Power a shut-off VM on, on the same host', 'Starting', () => ({}));
  lifecycleCommand(vm, context, 'reboot', 'Reboot a running VM (--hard: reset it)', 'Rebooting', (o) => ({ hard: o.hard === true }), (c) =>
    c.option('--hard', 'a reset instead of asking the guest to reboot'),
  );
  lifecycleCommand(vm, context, 'shelve', 'Stop a VM and give its host, GPUs and quota back; its disk is kept', 'Shelving', () => ({}));
  lifecycleCommand(
    vm,
    context,
    'unshelve',
    'Place a shelved VM again and boot it from its disk',
    'Unshelving',
    (o) => (o.waitForCapacity ? { wait_for_capacity_seconds: o.waitForCapacity } : {}),
    (c) => c.option('--wait-for-capacity <duration>', 'when nothing fits now, wait in the capacity queue up to this long (e.g. 30m)', duration('--wait-for-capacity', 86_400)),
  );
  lifecycleCommand(
    vm,
    context,
    'resize',
    'Change the size of a shut-off or shelved VM',
    'Resizing',
    (o) => ({ cpu_cores: o.cpus, memory: o.memory, gpu_count: o.gpus }),
    (c) =>
      c
        .option('--cpus <n>', 'vCPUs', integer('--cpus', 1, 256))
        .option('--memory <mib>', 'memory in MiB', integer('--memory', 256, 4_194_304))
        .option('--gpus <n>', 'number of GPUs', integer('--gpus', 0, 8)),
  );

  const host = program.command('host').description('The fleet: list, rename, relabel and remove hypervisor hosts (admin)');
  host
    .command('list')
    .description('Hosts with their state, CPUs in use and GPUs; removed hosts only with --include-removed')
    .option('--include-removed', 'also the hosts taken out of the fleet (state removed)')
    .action(async (options: { includeRemoved?: boolean }) => {
      const ctx = context();
      const query = options.includeRemoved ? { include_removed: true } : {};
      const hosts = unwrap(await ctx.client().GET('/hosts', { params: { query } })).items;
      ctx.print(hosts, () => (hosts.length === 0 ? 'No hosts.\n' : table(hosts, HOST_COLUMNS)));
    });
  host
    .command('rename')
    .description('Give a host another name (unique among hosts not removed)')
    .argument('<id>', 'the host id (see: vmplane host list)')
    .argument('<name>', 'a lowercase DNS name')
    .action(async (id: string, name: string) => {
      const ctx = context();
      const renamed = unwrap(await ctx.client().PATCH('/hosts/{id}', { params: { path: { id } }, body: { name } }));
      ctx.print(renamed, () => table([renamed], HOST_COLUMNS));
    });
  host
    .command('label')
    .description("Replace a host's labels with the ones given (e.g. rack=a12 nvlink); --clear removes them all")
    .argument('<id>', 'the host id')
    .argument('[labels...]', 'up to 32 labels of 1–63 characters')
    .option('--clear', 'set no labels')
    .action(async (id: string, labels: string[], options: { clear?: boolean }) => {
      if (labels.length === 0 && !options.clear) throw new CliError('usage: give the labels to set, or --clear to remove them all', EXIT.usage);
      if (labels.length > 0 && options.clear) throw new CliError('usage: --clear takes no labels', EXIT.usage);
      const ctx = context();
      const labelled = unwrap(await ctx.client().PATCH('/hosts/{id}', { params: { path: { id } }, body: { labels } }));
      ctx.print(labelled, () => table([labelled], HOST_COLUMNS));
    });
  host
    .command('delete')
    .description('Take a host out of the fleet; refused while VMs live on it or shelved VMs are pinned to it. Its record stays (state removed)')
    .argument('<id>', 'the host id')
    .action(async (id: string) => {
      const ctx = context();
      unwrap(await ctx.client().DELETE('/hosts/{id}', { params: { path: { id } } }));
      ctx.print({ id, removed: true }, () => `Removed host ${id}; it stays listed with: vmplane host list --include-removed\n`);
    });

  const image = program.command('image').description('Base images VMs are created from');
  image
    .command('list')
    .description('The registered images')
    .action(async () => {
      const ctx = context();
      const images = unwrap(await ctx.client().GET('/images')).items;
      ctx.print(images, () => (images.length === 0 ? 'No images.\n' : table(images, IMAGE_COLUMNS)));
    });
  image
    .command('create')
    .description('Register an image file on the control plane (admin)')
    .argument('<name>', 'letters, digits, ".", "_" or "-"')
    .argument('<path>', 'absolute path of the file on the control plane (the server reads it, not this CLI)')
    .addOption(new Option('--format <format>', 'the file format').choices(['qcow2', 'raw']).default('qcow2'))
    .action(async (name: string, path: string, options: { format: 'qcow2' | 'raw' }) => {
      const ctx = context();
      const made = unwrap(await ctx.client().POST('/images', { body: { name, path, format: options.format } }));
      ctx.print(made, () => table([made], IMAGE_COLUMNS));
    });

  const sshKey = program.command('ssh-key').description('Your SSH public keys, given to VMs by name');
  sshKey
    .command('add')
    .description('Add a public key (e.g. ~/.ssh/id_ed25519.pub)')
    .argument('<name>', 'letters, digits, ".", "_" or "-"')
    .argument('<file>', 'the public key file (- reads stdin)')
    .action(async (name: string, file: string) => {
      const ctx = context();
      const publicKey = await readTextFile(file, 'key file');
      const added = unwrap(await ctx.client().POST('/ssh-keys', { body: { name, public_key: publicKey } }));
      ctx.print(added, () => table([added], SSH_KEY_COLUMNS));
    });
  sshKey
    .command('list')
    .description('Your keys')
    .action(async () => {
      const ctx = context();
      const keys = unwrap(await ctx.client().GET('/ssh-keys')).items;
      ctx.print(keys, () => (keys.length === 0 ? 'No SSH keys.\n' : table(keys, SSH_KEY_COLUMNS)));
    });
  sshKey
    .command('delete')
    .description('Delete one of your keys; VMs made with it keep it')
    .argument('<id>', 'the key id (see: vmplane ssh-key list)')
    .action(async (id: string) => {
      const ctx = context();
      unwrap(await ctx.client().DELETE('/ssh-keys/{id}', { params: { path: { id } } }));
      ctx.print({ id, deleted: true }, () => `Deleted SSH key ${id}\n`);
    });

  return program;
}

/** A small text file the user names (or stdin for -), read whole; a file that cannot be read is a usage error naming it. */
async function readTextFile(path: string, what: string): Promise<string> {
  if (path === '-') return readStdin();
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new CliError(`${what} ${path} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, EXIT.usage);
  }
}

type LifecycleVerb = 'stop' | 'start' | 'reboot' | 'shelve' | 'unshelve' | 'resize';
type LifecycleOptions = { wait?: boolean; timeout: number; hard?: boolean; waitForCapacity?: number; cpus?: number; memory?: number; gpus?: number };

/** `vmplane vm <verb> <id>`: POST /vms/{id}/<verb>, then (unless --no-wait) follow its operation with progress on stderr. */
function lifecycleCommand(
  vm: Command,
  context: () => Context,
  verb: LifecycleVerb,
  description: string,
  progressVerb: string,
  body: (options: LifecycleOptions) => Record<string, unknown>,
  extra: (command: Command) => Command = (command) => command,
): void {
  extra(
    vm
      .command(verb)
      .description(`${description} (waits by default; progress on stderr)`)
      .argument('<id>', 'the VM id'),
  )
    .option('--wait', 'wait until the operation ends (the default)')
    .option('--no-wait', 'return at once, with the operation still running')
    .option('--timeout <seconds>', 'how long to wait', integer('--timeout', 1, 86_400), 600)
    .action(async (id: string, options: LifecycleOptions) => {
      const ctx = context();
      const client = ctx.client();
      const payload = Object.fromEntries(Object.entries(body(options)).filter(([, value]) => value !== undefined));
      const result = await client.POST(`/vms/{id}/${verb}` as '/vms/{id}/stop', {
        params: { path: { id } },
        headers: { Prefer: 'respond-async' },
        ...(Object.keys(payload).length > 0 ? { body: payload as never } : {}),
      });
      let current = unwrap(result);
      let operation: OperationResponseDto | null = null;
      if (result.response.status === 202) {
        if (options.wait === false) {
          note(`VM ${current.name}: ${verb} accepted; follow it with: vmplane ops ${current.id}`);
        } else {
          const timeout = Math.max(options.timeout, options.waitForCapacity ?? 0);
          ({ vm: current, operation } = await follow(client, current, result.response.headers.get('location'), progressVerb, timeout));
        }
      }
      ctx.print(current, () => vmDetails(current));
      if (operation?.status === 'failed') failIfFailed({ ...current, status: 'failed' }, operation);
    });
}

/** Runs the CLI and returns the exit code; prints one line on stderr for any failure. */
export async function run(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const program = buildProgram(env);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version end with 0; commander has already printed its message.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const { message, exitCode } = describeError(error, program.opts<GlobalOptions>().api ?? DEFAULT_API);
    process.stderr.write(`vmplane: ${escapeControl(message)}\n`);
    return exitCode;
  }
}

if (require.main === module) {
  void run(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
    // As libs/cli/bin/vmplane.js: do not wait for fetch's kept-alive connection to time out.
    process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
  });
}
