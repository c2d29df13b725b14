/**
 * Replays Alibaba's GPU-cluster trace (cluster-trace-gpu-v2023; Weng et al.,
 * "Beware of Fragmentation: Scheduling GPU-Sharing Workloads with
 * Fragmentation Gradient Descent", USENIX ATC 2023) through each placement
 * policy in-process, on every published variant of the task list, and
 * writes one table per variant to docs/benchmarks.md between the placement
 * markers. Exits 1, naming variant, run and policy, if the default policy
 * places fewer tasks than another policy in any run, or if a variant whose
 * GPU tasks all share a GPU fits no more GPU tasks than there are GPUs.
 * Exits 2, in one line naming the file and line, when a trace file cannot be
 * read as the trace's CSV, and on an unknown option.
 *
 *   npm run bench:placement            (tsc build, then node dist/bench/placement.js)
 *   node dist/bench/placement.js [--trace-dir DIR] [--nodes FILE] [--no-docs] [POD_LIST.csv ...]
 *
 * The trace directory defaults to ../shared/fixtures/alibaba-gpu-v2023 next
 * to the repository (PLACEMENT_TRACE_DIR overrides it); without file
 * arguments every openb_pod_list_*.csv in it is a variant.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { cpus, loadavg } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import {
  loadTraceNodesFile,
  loadTracePodsFile,
  taskToRequests,
  TraceHost,
  TraceParseError,
  TraceTask,
  traceHostsToFleet,
  vgpuDemandShare,
  withVgpuShare,
} from '../src/fleet/domain/alibaba-trace';
import { milliGpuOf } from '../src/fleet/domain/gpu-profiles';
import { applyPlacement, createFleetLedger, FleetLedger, neverFitting } from '../src/scheduler/fleet-ledger';
import { DEFAULT_POLICY, POLICIES, schedule } from '../src/scheduler/scheduler';
import { Placement, PlacementContext, PlacementPolicy, PlacementRequest, SchedulerHost } from '../src/scheduler/scheduler.types';
import { createWorkloadTally, WorkloadTally } from '../src/scheduler/workload-mix';
import { seededRandom } from '../libs/sdk/src/seeded-random';

const RANDOM_SEED: number = 20230710;
const SHUFFLE_SEED: number = 1;
const WARMUP_ARRIVALS: number = 1000;
const TIMING_REPETITIONS: number = 3;
const START_MARKER: string = '<!-- placement:start -->';
const END_MARKER: string = '<!-- placement:end -->';
const POD_LIST_PREFIX: string = 'openb_pod_list_';
const NODE_LIST: string = 'openb_node_list_all_node.csv';

interface Variant {
  name: string;
  file: string;
  tasks: TraceTask[];
  /** Share of each model's GPUs put in vgpu mode for this variant's replays. */
  vgpuShare: number;
  /** Every GPU task of the variant shares a GPU. */
  allGpuTasksShare: boolean;
}

interface RunResult {
  policy: string;
  placed: number;
  placedGpu: number;
  /** GPU units held at the end, in milli-GPUs. */
  allocatedMilli: number;
  /** Allocated / all GPU capacity when a GPU task was first refused; null if none was. */
  shareAtFirstGpuRefusal: number | null;
  decisionNs: number[];
}

interface Run {
  title: string;
  order: number[];
}

function findRoot(): string {
  for (let dir: string = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
  }
  return process.cwd();
}

const USAGE: string = 'usage: node dist/bench/placement.js [--trace-dir DIR] [--nodes FILE] [--no-docs] [POD_LIST.csv ...]';

/** The command line; an unknown or misspelt option is refused (strict), rather than ignored. */
function commandLine(): { traceDir?: string; nodes?: string; noDocs: boolean; files: string[] } {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    options: { 'trace-dir': { type: 'string' }, nodes: { type: 'string' }, 'no-docs': { type: 'boolean' } },
    allowPositionals: true,
    strict: true,
  });
  return { traceDir: values['trace-dir'], nodes: values.nodes, noDocs: values['no-docs'] === true, files: positionals.map((file: string) => resolve(file)) };
}

function variantName(file: string): string {
  const name: string = basename(file, '.csv');
  return name.startsWith(POD_LIST_PREFIX) ? name.slice(POD_LIST_PREFIX.length) : name;
}

/** default first, then by family and the number in the name (cpu050 before cpu100). */
function compareVariants(a: string, b: string): number {
  if (a === 'default' || b === 'default') return a === 'default' ? (b === 'default' ? 0 : -1) : 1;
  const [, familyA, numberA] = /^(\D*)(\d*)/.exec(a) as RegExpExecArray;
  const [, familyB, numberB] = /^(\D*)(\d*)/.exec(b) as RegExpExecArray;
  if (familyA !== familyB) return familyA < familyB ? -1 : 1;
  return Number(numberA || 0) - Number(numberB || 0) || (a < b ? -1 : a > b ? 1 : 0);
}

function loadVariant(file: string): Variant {
  const tasks: TraceTask[] = loadTracePodsFile(file);
  const gpuTasks: TraceTask[] = tasks.filter((task: TraceTask) => task.numGpu > 0);
  return {
    name: variantName(file),
    file,
    tasks,
    vgpuShare: vgpuDemandShare(tasks),
    allGpuTasksShare: gpuTasks.length > 0 && gpuTasks.every((task: TraceTask) => task.numGpu === 1 && task.gpuMilli < 1000),
  };
}

/** Arrival order of a filling run: by creation_time, then file order (file order alone when there is no timing). */
function creationOrder(tasks: readonly TraceTask[]): number[] {
  return tasks
    .map((_: TraceTask, i: number) => i)
    .sort((a: number, b: number) => (tasks[a].creationTime ?? 0) - (tasks[b].creationTime ?? 0) || a - b);
}

function shuffled(count: number, seed: number): number[] {
  const random: () => number = seededRandom(seed);
  const order: number[] = Array.from({ length: count }, (_: unknown, i: number) => i);
  for (let i: number = count - 1; i > 0; i--) {
    const j: number = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** Fills a fresh fleet with the tasks in `order`, never releasing; a refused task is dropped, one that can never fit skipped. */
function fill(
  policy: PlacementPolicy,
  fleet: readonly SchedulerHost[],
  requests: readonly PlacementRequest[][],
  order: readonly number[],
  never: readonly boolean[],
  limit: number = Number.POSITIVE_INFINITY,
): RunResult {
  const ledger: FleetLedger = createFleetLedger(structuredClone(fleet) as SchedulerHost[]);
  const random: () => number = seededRandom(RANDOM_SEED);
  const result: RunResult = {
    policy: policy.name,
    placed: 0,
    placedGpu: 0,
    allocatedMilli: 0,
    shareAtFirstGpuRefusal: null,
    decisionNs: [],
  };
  const capacity: number = ledger.totalGpus * 1000;
  // The policy learns the workload from the arrivals so far, as an app would from its recent requests.
  const workload: WorkloadTally = createWorkloadTally();
  let arrivals: number = 0;
  for (const task of order) {
    if (arrivals++ >= limit) break;
    if (never[task]) continue;
    workload.record(requests[task]);
    const context: PlacementContext = { workload: workload.mix() };
    // A task that accepts several GPU models (or a MIG profile) tries its requests in turn.
    let placement: Placement | null = null;
    let placedRequest: PlacementRequest | null = null;
    for (const req of requests[task]) {
      const start: bigint = process.hrtime.bigint();
      placement = schedule(ledger.hosts, req, policy, random, context);
      result.decisionNs.push(Number(process.hrtime.bigint() - start));
      if (placement !== null) {
        placedRequest = req;
        break;
      }
    }
    const wantsGpu: boolean = requests[task][0].gpuCount > 0 || Boolean(requests[task][0].gpuProfile);
    if (placement === null || placedRequest === null) {
      if (wantsGpu && result.shareAtFirstGpuRefusal === null) result.shareAtFirstGpuRefusal = ledger.allocatedMilli / capacity;
      continue;
    }
    applyPlacement(ledger, placement, placedRequest);
    result.placed++;
    if (wantsGpu) result.placedGpu++;
  }
  result.allocatedMilli = ledger.allocatedMilli;
  return result;
}

/** The p-th percentile in µs, as text; '—' when nothing was measured. */
function percentileUs(samples: readonly number[], p: number): string {
  if (samples.length === 0) return '—';
  const sorted: Float64Array = Float64Array.from(samples).sort();
  const at: number = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return (sorted[at] / 1000).toFixed(0);
}

/** A share as a percentage; 'never' for no event, '—' for a share of nothing (a fleet without GPUs). */
function percent(share: number | null): string {
  if (share === null) return 'never';
  return Number.isFinite(share) ? `${(share * 100).toFixed(1)}%` : '—';
}

function units(milli: number): string {
  return (milli / 1000).toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
}

function policyLabel(name: string): string {
  return name === DEFAULT_POLICY.name ? `**${name}** (default)` : name;
}

function variantTable(results: readonly RunResult[][]): string {
  const [ordered, shuffledRun] = results;
  const lines: string[] = [
    '| policy | ordered: placed | GPU tasks | GPU units | share at 1st GPU refusal | shuffled: placed | GPU tasks | GPU units | share at 1st GPU refusal | p50 µs | p99 µs |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  ordered.forEach((a: RunResult, i: number) => {
    const b: RunResult = shuffledRun[i];
    const samples: number[] = a.decisionNs.concat(b.decisionNs);
    lines.push(
      `| ${policyLabel(a.policy)} | ${a.placed} | ${a.placedGpu} | ${units(a.allocatedMilli)} | ${percent(a.shareAtFirstGpuRefusal)} | ` +
        `${b.placed} | ${b.placedGpu} | ${units(b.allocatedMilli)} | ${percent(b.shareAtFirstGpuRefusal)} | ` +
        `${percentileUs(samples, 50)} | ${percentileUs(samples, 99)} |`,
    );
  });
  return lines.join('\n');
}

function neverNote(never: readonly boolean[]): string {
  const count: number = never.filter(Boolean).length;
  return count === 0 ? '' : ` ${count} task(s) no host could hold even empty, skipped in every run (the API refuses them with a 4xx).`;
}

function writeSection(docPath: string, section: string): void {
  const block: string = `${START_MARKER}\n${section.trim()}\n${END_MARKER}`;
  const current: string = existsSync(docPath) ? readFileSync(docPath, 'utf8') : '# Benchmarks\n';
  const start: number = current.indexOf(START_MARKER);
  const end: number = current.indexOf(END_MARKER);
  const next: string =
    start >= 0 && end > start
      ? current.slice(0, start) + block + current.slice(end + END_MARKER.length)
      : `${current.trimEnd()}\n\n${block}\n`;
  writeFileSync(docPath, next);
}

function main(): void {
  const root: string = findRoot();
  const args = commandLine();
  const traceDir: string = resolve(args.traceDir ?? process.env.PLACEMENT_TRACE_DIR ?? join(root, '..', 'shared', 'fixtures', 'alibaba-gpu-v2023'));
  const nodesFile: string = resolve(args.nodes ?? join(traceDir, NODE_LIST));
  const files: string[] =
    args.files.length > 0
      ? args.files
      : readdirSync(traceDir)
          .filter((name: string) => name.startsWith(POD_LIST_PREFIX) && name.endsWith('.csv'))
          .map((name: string) => join(traceDir, name));
  if (files.length === 0) throw Object.assign(new Error(`no ${POD_LIST_PREFIX}*.csv in ${traceDir}`), { code: 'NO_POD_LISTS' });
  const variants: Variant[] = files.map(loadVariant).sort((a: Variant, b: Variant) => compareVariants(a.name, b.name));
  const nodes: TraceHost[] = loadTraceNodesFile(nodesFile);
  const baseFleet: SchedulerHost[] = traceHostsToFleet(nodes);
  const gpuTotal: number = baseFleet.reduce((sum: number, host: SchedulerHost) => sum + host.gpus.length, 0);
  const policies: PlacementPolicy[] = [DEFAULT_POLICY, ...Object.values(POLICIES).filter((p) => p !== DEFAULT_POLICY)];

  const failures: string[] = [];
  const sections: string[] = [];
  const summary: string[] = [
    '| variant | tasks | vGPU share of GPUs | ordered: default placed | best other (policy) | shuffled: default placed | best other (policy) |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  const defaultSamples: number[] = [];
  for (const variant of variants) {
    const fleet: SchedulerHost[] = withVgpuShare(baseFleet, variant.vgpuShare);
    const vgpuGpus: number = fleet.reduce(
      (sum: number, host: SchedulerHost) => sum + host.gpus.filter((gpu) => gpu.sharingMode === 'vgpu').length,
      0,
    );
    const requests: PlacementRequest[][] = variant.tasks.map((task: TraceTask) => taskToRequests(task));
    const never: boolean[] = neverFitting(fleet, requests);
    const runs: Run[] = [
      { title: 'ordered', order: creationOrder(variant.tasks) },
      { title: 'shuffled', order: shuffled(variant.tasks.length, SHUFFLE_SEED) },
    ];
    const results: RunResult[][] = runs.map((run: Run) => {
      for (const policy of policies) fill(policy, fleet, requests, run.order, never, WARMUP_ARRIVALS);
      return policies.map((policy: PlacementPolicy) => fill(policy, fleet, requests, run.order, never));
    });
    const bestOther: string[] = runs.map((run: Run, r: number) => {
      const [mine, ...others] = results[r];
      for (const other of others) {
        if (other.placed > mine.placed) {
          failures.push(`${variant.name} / ${run.title}: ${DEFAULT_POLICY.name} placed ${mine.placed}, ${other.policy} placed ${other.placed}`);
        }
      }
      const best: RunResult = others.reduce((a: RunResult, b: RunResult) => (b.placed > a.placed ? b : a));
      if (variant.allGpuTasksShare && mine.placedGpu <= gpuTotal) {
        failures.push(`${variant.name} / ${run.title}: every GPU task shares a GPU, yet only ${mine.placedGpu} fit on ${gpuTotal} GPUs`);
      }
      return `${mine.placed} | ${best.placed} (${best.policy})`;
    });
    defaultSamples.push(...results[0][0].decisionNs, ...results[1][0].decisionNs);
    summary.push(`| ${variant.name} | ${variant.tasks.length} | ${percent(vgpuGpus / gpuTotal)} | ${bestOther.join(' | ')} |`);
    const gpuTasks: number = variant.tasks.filter((task: TraceTask) => task.numGpu > 0).length;
    const sharing: number = variant.tasks.filter((task: TraceTask) => task.numGpu === 1 && task.gpuMilli < 1000).length;
    const demand: number = requests.reduce((sum: number, alternatives) => sum + milliGpuOf(alternatives[0]), 0);
    sections.push(
      `### ${variant.name}`,
      '',
      `\`${basename(variant.file)}\`: ${variant.tasks.length} tasks, ${gpuTasks} with GPUs (${sharing} sharing one), asking for ` +
        `${units(demand)} GPU units in all; ${vgpuGpus} of the ${gpuTotal} GPUs in vgpu mode.${neverNote(never)}`,
      '',
      variantTable(results),
      '',
    );
    process.stderr.write(`${variant.name}: ${bestOther.join(' ; ')}\n`);
  }

  // Decision time again on the first variant, each policy three times in turn: the machine's other load shows
  // in any single run's tail, so every repetition is reported, not only the best.
  const timing: string[] = [
    `| policy | ${Array.from({ length: TIMING_REPETITIONS }, (_: unknown, r: number) => `run ${r + 1}: p50 / p99 µs`).join(' | ')} |`,
    `|---|${Array.from({ length: TIMING_REPETITIONS }, () => '---:').join('|')}|`,
  ];
  const timed: Variant = variants[0];
  const timedFleet: SchedulerHost[] = withVgpuShare(baseFleet, timed.vgpuShare);
  const timedRequests: PlacementRequest[][] = timed.tasks.map((task: TraceTask) => taskToRequests(task));
  const timedNever: boolean[] = neverFitting(timedFleet, timedRequests);
  const timedOrders: number[][] = [creationOrder(timed.tasks), shuffled(timed.tasks.length, SHUFFLE_SEED)];
  const cells: string[][] = policies.map(() => []);
  const loadBefore: number = loadavg()[0];
  for (let r: number = 0; r < TIMING_REPETITIONS; r++) {
    policies.forEach((policy: PlacementPolicy, p: number) => {
      const samples: number[] = timedOrders.flatMap((order: number[]) => fill(policy, timedFleet, timedRequests, order, timedNever).decisionNs);
      cells[p].push(`${percentileUs(samples, 50)} / ${percentileUs(samples, 99)}`);
    });
  }
  policies.forEach((policy: PlacementPolicy, p: number) => timing.push(`| ${policyLabel(policy.name)} | ${cells[p].join(' | ')} |`));
  const load: string = `load average ${loadBefore.toFixed(1)} before, ${loadavg()[0].toFixed(1)} after, on ${cpus().length} CPUs`;

  const script: string = relative(root, process.argv[1]);
  const command: string =
    process.env.npm_lifecycle_event === 'bench:placement'
      ? 'npm run bench:placement'
      : ['node', script.startsWith('..') ? process.argv[1] : script, ...process.argv.slice(2)].join(' ');
  const verdict: string =
    failures.length === 0
      ? `In every run of every variant the default, \`${DEFAULT_POLICY.name}\`, placed at least as many tasks as each other policy (the bench checks this and exits 1 otherwise).`
      : `**The default did not win everywhere:**\n\n${failures.map((f: string) => `- ${f}`).join('\n')}`;
  const markdown: string = [
    '## Placement policies on the Alibaba GPU trace',
    '',
    'Replays of cluster-trace-gpu-v2023 (Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing Workloads with ' +
      `Fragmentation Gradient Descent", USENIX ATC 2023): ${nodes.length} hosts with ${gpuTotal} GPUs, and every variant ` +
      'of the task list, in-process through `schedule()` (no HTTP, no database), each policy on a fresh fleet.',
    '',
    `Command: \`${command}\` (\`npm run bench:placement\` runs \`node dist/bench/placement.js\` after the tsc build) · ` +
      `node ${process.version} · os.cpus().length = ${cpus().length} (${cpus()[0]?.model.trim() ?? 'unknown'}) · ` +
      `${new Date().toISOString().slice(0, 10)}.`,
    '',
    verdict,
    '',
    `Decision time of the default over all its filling runs (${defaultSamples.length.toLocaleString('en-US')} \`schedule()\` calls ` +
      `over ${nodes.length} hosts): p50 ${percentileUs(defaultSamples, 50)} µs, p99 ${percentileUs(defaultSamples, 99)} µs.`,
    '',
    `Decision time on \`${timed.name}\`, both filling runs, each policy ${TIMING_REPETITIONS} times in turn (${load}):`,
    '',
    ...timing,
    '',
    '### Summary',
    '',
    ...summary,
    '',
    '#### How to read it',
    '',
    '- **Filling runs**, as in the paper: tasks arrive one by one and never leave, until the fleet is full; a refused task is ' +
      'dropped. A task no host could hold even when the fleet is empty (more GPUs, cores or memory than any host has, a ' +
      'model no host has) is skipped and counted under its variant: the API refuses it with a 4xx before placement, so it ' +
      'says nothing about fragmentation. *Ordered* takes them by creation_time (file order when the file has no timing); *shuffled* in a seeded random ' +
      `order (seed ${SHUFFLE_SEED}).`,
    '- **Tasks become VMs** with `taskToRequests`: CPU rounds up to whole cores, memory as given, 20 GiB disk. A task on ' +
      'several GPUs, or on one whole GPU, asks for whole passthrough GPUs (`gpuCount`). A GPU-sharing task (gpu_milli < 1000) ' +
      'asks for the smallest time-sliced vGPU that holds its share (`1/8`, `1/4`, `1/2`, or `1` above 500). A task whose ' +
      'gpu_spec allows several models tries them in order.',
    '- **Sharing modes**: for each variant, the share of its GPU demand that vGPUs serve (sharing tasks at their vGPU size, ' +
      'over all GPU demand) is the share of each GPU model put in vgpu mode, whole hosts at a time, smallest hosts first ' +
      '(`withVgpuShare`): an operator sizing the pools to the expected workload. The rest stay passthrough. No GPU is in MIG ' +
      "mode: none of the trace's models (V100, P100, T4, A10 and the undisclosed G1–G3) is a MIG GPU we have a table for.",
    '- **Files** are read by column name, in any order; plain comma-separated values, as the trace has them, or with ' +
      'RFC 4180 quoting, as pandas or a spreadsheet may write them; a whole number may be written as a float (`12000.0`). ' +
      "A GPU model code that is not the trace's own (`H100`, `A100M80`) is taken as a model of that name " +
      '(`trace-h100-32gb`, `trace-a100-80gb`): placement only compares models, so hosts and tasks naming it agree.',
    '- **Columns**: *placed* counts tasks (CPU-only included); *GPU tasks* those with GPUs; *GPU units* the GPUs held at the ' +
      'end, fractions by their size; *share at 1st GPU refusal* is GPU units held / all GPUs when a GPU task was first ' +
      'refused, the higher the less capacity fragmentation wasted. p50 and p99 are per `schedule()` call over both runs, ' +
      `after a ${WARMUP_ARRIVALS}-arrival warm-up, with process.hrtime.bigint(). random-fit draws from mulberry32 seeded ` +
      `with ${RANDOM_SEED}.`,
    '- **Policies**: `first-fit` takes the first fitting host in fleet order and its first fitting GPU; `random-fit` a ' +
      'uniformly random fitting host; `best-fit` the host left with the least free GPU capacity, then CPU, then memory, ' +
      'and there the GPU left with the least room for the profile. The default is described in ' +
      '[design.md](design.md) ("Fragmentation", in §9) and its source.',
    '',
    ...sections,
  ].join('\n');

  process.stdout.write(`${markdown}\n`);
  if (!args.noDocs) writeSection(join(root, 'docs/benchmarks.md'), markdown);
  if (failures.length > 0) {
    process.stderr.write(`bench:placement FAILED:\n${failures.map((f: string) => `  ${f}`).join('\n')}\n`);
    process.exitCode = 1;
  }
}

try {
  main();
} catch (error) {
  // A trace that cannot be read, or a command line that cannot be understood, is the user's to fix: one line, no stack.
  const code: string = String((error as { code?: unknown }).code ?? '');
  if (!(error instanceof TraceParseError || code.startsWith('ERR_PARSE_ARGS') || code === 'ENOENT' || code === 'NO_POD_LISTS')) throw error;
  process.stderr.write(`bench:placement: ${(error as Error).message}\n${code.startsWith('ERR_PARSE_ARGS') ? `${USAGE}\n` : ''}`);
  process.exitCode = 2;
}
