/**
 * Replays Alibaba's GPU-cluster trace (cluster-trace-gpu-v2023; Weng et al.,
 * "Beware of Fragmentation: Scheduling GPU-Sharing Workloads with
 * Fragmentation Gradient Descent", USENIX ATC 2023) through each placement
 * policy in-process, and writes the results to docs/benchmarks.md between
 * the placement markers.
 *
 *   npm run bench:placement            (tsc build, then node dist/bench/placement.js)
 *   node dist/bench/placement.js [--trace-dir DIR] [--no-docs]
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import {
  loadTraceNodesFile,
  loadTracePodsFile,
  taskToRequests,
  TraceHost,
  TraceTask,
  traceHostsToFleet,
} from '../src/fleet/domain/alibaba-trace';
import { applyPlacement, createFleetLedger, FleetLedger, releasePlacement } from '../src/scheduler/fleet-ledger';
import { createFragAwareBinpackPolicy, FED_GPU_SHARE } from '../src/scheduler/policies/frag-aware-binpack.policy';
import { DEFAULT_POLICY, POLICIES, schedule } from '../src/scheduler/scheduler';
import { Placement, PlacementPolicy, PlacementRequest } from '../src/scheduler/scheduler.types';
import { seededRandom } from '../libs/sdk/src/seeded-random';

const RANDOM_SEED: number = 20230710;
const SHUFFLE_SEED: number = 1;
const FED_SHARE_SWEEP: readonly number[] = [0.1, 0.25, 0.5, 0.75, 1];
const WARMUP_ARRIVALS: number = 1000;
const START_MARKER: string = '<!-- placement:start -->';
const END_MARKER: string = '<!-- placement:end -->';

interface TraceEvent {
  time: number;
  /** 1 = arrival; 0 = departure, before arrivals at the same second; 2 = departure of a zero-length task, after its arrival. */
  order: number;
  task: number;
}

interface ReplayResult {
  policy: string;
  placed: number;
  placedGpu: number;
  refused: number;
  refusedMultiGpu: number;
  decisions: number;
  decisionNs: number[];
  totalDecisionNs: number;
  /** Allocated / total GPUs when a multi-GPU request was first refused; null if none was. */
  shareAtFirstMultiGpuRefusal: number | null;
  firstMultiGpuRefusalArrival: number | null;
  peakShare: number;
  wallMs: number;
}

function findRoot(): string {
  for (let dir: string = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
  }
  return process.cwd();
}

function buildEvents(tasks: readonly TraceTask[], withDepartures: boolean): TraceEvent[] {
  const events: TraceEvent[] = [];
  tasks.forEach((task: TraceTask, i: number) => {
    events.push({ time: task.creationTime, order: 1, task: i });
    if (withDepartures && task.deletionTime !== null) {
      events.push({ time: task.deletionTime, order: task.deletionTime === task.creationTime ? 2 : 0, task: i });
    }
  });
  return events.sort((a: TraceEvent, b: TraceEvent) => a.time - b.time || a.order - b.order || a.task - b.task);
}

function replay(
  policy: PlacementPolicy,
  nodes: readonly TraceHost[],
  tasks: readonly TraceTask[],
  events: readonly TraceEvent[],
  arrivalLimit: number = Number.POSITIVE_INFINITY,
): ReplayResult {
  const ledger: FleetLedger = createFleetLedger(traceHostsToFleet(nodes));
  const random: () => number = seededRandom(RANDOM_SEED);
  const live: (Placement | null)[] = new Array<Placement | null>(tasks.length).fill(null);
  const liveRequest: (PlacementRequest | null)[] = new Array<PlacementRequest | null>(tasks.length).fill(null);
  const result: ReplayResult = {
    policy: policy.name,
    placed: 0,
    placedGpu: 0,
    refused: 0,
    refusedMultiGpu: 0,
    decisions: 0,
    decisionNs: [],
    totalDecisionNs: 0,
    shareAtFirstMultiGpuRefusal: null,
    firstMultiGpuRefusalArrival: null,
    peakShare: 0,
    wallMs: 0,
  };
  const wallStart: bigint = process.hrtime.bigint();
  let arrivals: number = 0;
  for (const event of events) {
    if (event.order !== 1) {
      const placement: Placement | null = live[event.task];
      if (placement !== null) {
        releasePlacement(ledger, placement, liveRequest[event.task] as PlacementRequest);
        live[event.task] = null;
      }
      continue;
    }
    if (arrivals++ >= arrivalLimit) break;
    // A task that accepts several GPU models tries them in gpu_spec order.
    let placement: Placement | null = null;
    let placedRequest: PlacementRequest | null = null;
    const requests: PlacementRequest[] = taskToRequests(tasks[event.task]);
    for (const req of requests) {
      const start: bigint = process.hrtime.bigint();
      placement = schedule(ledger.hosts, req, policy, random);
      const elapsed: number = Number(process.hrtime.bigint() - start);
      result.decisionNs.push(elapsed);
      result.decisions++;
      result.totalDecisionNs += elapsed;
      if (placement !== null) {
        placedRequest = req;
        break;
      }
    }
    if (placement === null || placedRequest === null) {
      result.refused++;
      if (requests[0].gpuCount >= 2) {
        result.refusedMultiGpu++;
        if (result.shareAtFirstMultiGpuRefusal === null) {
          result.shareAtFirstMultiGpuRefusal = ledger.allocatedGpus / ledger.totalGpus;
          result.firstMultiGpuRefusalArrival = arrivals;
        }
      }
      continue;
    }
    applyPlacement(ledger, placement, placedRequest);
    live[event.task] = placement;
    liveRequest[event.task] = placedRequest;
    result.placed++;
    if (placedRequest.gpuCount > 0) result.placedGpu++;
    result.peakShare = Math.max(result.peakShare, ledger.allocatedGpus / ledger.totalGpus);
  }
  result.wallMs = Number(process.hrtime.bigint() - wallStart) / 1e6;
  return result;
}

function percentileUs(samples: readonly number[], p: number): number {
  const sorted: Float64Array = Float64Array.from(samples).sort();
  const at: number = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[at] / 1000;
}

function percent(share: number | null): string {
  return share === null ? 'never' : `${(share * 100).toFixed(1)}%`;
}

function table(results: readonly ReplayResult[]): string {
  const lines: string[] = [
    '| policy | placed (GPU + CPU-only) | refused | refused multi-GPU | GPU share at 1st multi-GPU refusal (arrival #) | peak GPU share | decisions/s | p50 µs | p99 µs |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    const name: string = r.policy === DEFAULT_POLICY.name ? `**${r.policy}** (default)` : r.policy;
    const firstRefusal: string =
      r.firstMultiGpuRefusalArrival === null
        ? 'never'
        : `${percent(r.shareAtFirstMultiGpuRefusal)} (#${r.firstMultiGpuRefusalArrival})`;
    lines.push(
      `| ${name} | ${r.placed} (${r.placedGpu} + ${r.placed - r.placedGpu}) | ${r.refused} | ${r.refusedMultiGpu} | ${firstRefusal} | ${percent(r.peakShare)} | ` +
        `${Math.round(r.decisions / (r.totalDecisionNs / 1e9)).toLocaleString('en-US')} | ` +
        `${percentileUs(r.decisionNs, 50).toFixed(0)} | ${percentileUs(r.decisionNs, 99).toFixed(0)} |`,
    );
  }
  return lines.join('\n');
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

function argValue(name: string): string | undefined {
  const at: number = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

interface Scenario {
  title: string;
  note: string;
  events: TraceEvent[];
  /** Whether this scenario loads the fleet enough to rank policies on placement. */
  ranks: boolean;
}

function lastCreation(tasks: readonly TraceTask[]): number {
  return tasks.reduce((latest: number, task: TraceTask) => Math.max(latest, task.creationTime), 0);
}

function peakConcurrentGpus(tasks: readonly TraceTask[], events: readonly TraceEvent[]): number {
  let current: number = 0;
  let peak: number = 0;
  for (const event of events) {
    const gpus: number = taskToRequests(tasks[event.task])[0].gpuCount;
    current += event.order === 1 ? gpus : -gpus;
    peak = Math.max(peak, current);
  }
  return peak;
}

function fillingEvents(order: readonly number[]): TraceEvent[] {
  return order.map((task: number, position: number): TraceEvent => ({ time: position, order: 1, task }));
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

/** Placed tasks over the ranking scenarios, then the mean share at the first multi-GPU refusal (never = 100%). */
function bestOnPlacement(policies: readonly PlacementPolicy[], ranked: readonly ReplayResult[][]): string {
  const totals: { name: string; placed: number; share: number }[] = policies.map((policy: PlacementPolicy, i: number) => ({
    name: policy.name,
    placed: ranked.reduce((sum: number, results: ReplayResult[]) => sum + results[i].placed, 0),
    share: ranked.reduce((sum: number, results: ReplayResult[]) => sum + (results[i].shareAtFirstMultiGpuRefusal ?? 1), 0),
  }));
  totals.sort((a, b) => b.placed - a.placed || b.share - a.share);
  return totals[0].name;
}

function main(): void {
  const root: string = findRoot();
  const traceDir: string = resolve(
    argValue('--trace-dir') ?? process.env.PLACEMENT_TRACE_DIR ?? join(root, 'test/fixtures/alibaba-gpu-v2023'),
  );
  const nodes: TraceHost[] = loadTraceNodesFile(join(traceDir, 'openb_node_list_all_node.csv'));
  const tasks: TraceTask[] = loadTracePodsFile(join(traceDir, 'openb_pod_list_default.csv'));
  const policies: PlacementPolicy[] = [DEFAULT_POLICY, ...Object.values(POLICIES).filter((p) => p !== DEFAULT_POLICY)];
  const byCreation: number[] = tasks
    .map((_: TraceTask, i: number) => i)
    .sort((a: number, b: number) => tasks[a].creationTime - tasks[b].creationTime || a - b);
  const recorded: TraceEvent[] = buildEvents(tasks, true);
  const scenarios: Scenario[] = [
    {
      title: 'As recorded: arrivals at creation_time, releases at deletion_time',
      note:
        `The sampled tasks are short and spread over ${Math.round(lastCreation(tasks) / 86400)} days: at most ` +
        `${peakConcurrentGpus(tasks, recorded)} GPUs are asked for at once, so nothing is refused and this run measures ` +
        'decision speed only.',
      events: recorded,
      ranks: false,
    },
    {
      title: 'Filling: arrivals in creation order, no releases',
      note:
        'As in the paper\'s evaluation, the workload is inflated until the fleet is full: the trace asks for ' +
        `${byCreation.reduce((sum: number, i: number) => sum + taskToRequests(tasks[i])[0].gpuCount, 0)} whole GPUs in all, ` +
        'more than the fleet has.',
      events: fillingEvents(byCreation),
      ranks: true,
    },
    {
      title: `Filling, shuffled: the same in a seeded random order (seed ${SHUFFLE_SEED})`,
      note: 'Checks that the ranking does not hinge on the one recorded order.',
      events: fillingEvents(shuffled(tasks.length, SHUFFLE_SEED)),
      ranks: true,
    },
  ];

  const sections: string[] = [];
  const ranked: ReplayResult[][] = [];
  for (const scenario of scenarios) {
    for (const policy of policies) replay(policy, nodes, tasks, scenario.events, WARMUP_ARRIVALS);
    const results: ReplayResult[] = policies.map((policy: PlacementPolicy) => {
      const result: ReplayResult = replay(policy, nodes, tasks, scenario.events);
      process.stderr.write(`${scenario.title} / ${policy.name}: ${result.wallMs.toFixed(0)} ms\n`);
      return result;
    });
    if (scenario.ranks) ranked.push(results);
    sections.push(`### ${scenario.title}`, '', scenario.note, '', table(results), '');
  }
  const rankingScenarios: Scenario[] = scenarios.filter((scenario: Scenario) => scenario.ranks);
  const sweep: string[] = [
    `| fed share | ${rankingScenarios
      .map((_: Scenario, i: number) => `filling ${i + 1}: placed | share at 1st multi-GPU refusal | peak share`)
      .join(' | ')} |`,
    `|---:|${rankingScenarios.map(() => '---:|---:|---:').join('|')}|`,
  ];
  for (const share of FED_SHARE_SWEEP) {
    const cells: string[] = rankingScenarios.map((scenario: Scenario) => {
      const r: ReplayResult = replay(createFragAwareBinpackPolicy(share), nodes, tasks, scenario.events);
      return `${r.placed} | ${percent(r.shareAtFirstMultiGpuRefusal)} | ${percent(r.peakShare)}`;
    });
    sweep.push(`| ${share === FED_GPU_SHARE ? `**${share}** (used)` : share} | ${cells.join(' | ')} |`);
  }
  sections.push(
    '### Tuning the fragmentation-aware policy',
    '',
    'A free GPU counts as stranded when its host has less than the *fed share* of a per-GPU slice of CPU and memory ' +
      '(host total / GPU count) left for it. The same two filling runs (1: creation order, 2: shuffled) for several values:',
    '',
    ...sweep,
    '',
    `The policy uses ${FED_GPU_SHARE} (FED_GPU_SHARE). Between values that place about as many tasks, the one that keeps ` +
      'multi-GPU VMs placeable up to a full fleet wins: where a value places a few more tasks but refuses a multi-GPU VM with ' +
      'a quarter of the GPUs still free, the extra tasks are small ones that took the place of large ones.',
    '',
  );
  const winner: string = bestOnPlacement(policies, ranked);
  const verdict: string =
    winner === DEFAULT_POLICY.name
      ? `The default, \`${DEFAULT_POLICY.name}\`, places the most tasks over the filling runs (ties broken by GPU share at the first multi-GPU refusal).`
      : `**\`${winner}\` beats the default \`${DEFAULT_POLICY.name}\` on the filling runs: make it the default or improve the default.**`;

  const gpuTotal: number = nodes.reduce((sum: number, node: TraceHost) => sum + node.gpuCount, 0);
  const script: string = relative(root, process.argv[1]);
  const command: string =
    process.env.npm_lifecycle_event === 'bench:placement'
      ? 'npm run bench:placement'
      : ['node', script.startsWith('..') ? process.argv[1] : script, ...process.argv.slice(2)].join(' ');
  const markdown: string = [
    '## Placement policies on the Alibaba GPU trace',
    '',
    'Replays of cluster-trace-gpu-v2023 (Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing Workloads with ' +
      `Fragmentation Gradient Descent", USENIX ATC 2023): ${nodes.length} hosts with ${gpuTotal} GPUs and ${tasks.length} tasks, ` +
      'in-process through `schedule()` (no HTTP, no database), each policy on a fresh fleet.',
    '',
    `Command: \`${command}\` (\`npm run bench:placement\` runs \`node dist/bench/placement.js\` after the tsc build) · ` +
      `node ${process.version} · os.cpus().length = ${cpus().length} (${cpus()[0]?.model.trim() ?? 'unknown'}) · ` +
      `${new Date().toISOString().slice(0, 10)}.`,
    '',
    ...sections,
    '#### How to read it',
    '',
    '- Tasks become VMs with `taskToRequests`: a GPU-sharing task (0 < gpu_milli < 1000) takes one whole GPU (a VM cannot ' +
      'share one), CPU rounds up to whole cores, memory as given, 20 GiB disk each; a task whose gpu_spec allows several models ' +
      'tries them in order (the default trace has no such constraint). A refused task is dropped, not queued.',
    '- "GPU share at 1st multi-GPU refusal" is allocated / all GPUs when a request for ≥ 2 GPUs first found no host, with the ' +
      'arrival number: the higher, the less capacity fragmentation wasted. "Peak GPU share" is the highest allocation reached.',
    '- Decisions/s = `schedule()` calls / time spent inside them (refusals included); p50 and p99 are per call over ' +
      `${nodes.length} hosts, measured with process.hrtime.bigint() after a ${WARMUP_ARRIVALS}-arrival warm-up. ` +
      `random-fit draws from mulberry32 seeded with ${RANDOM_SEED}. first-fit is fast because it stops at the first fit.`,
    '- Policies: `first-fit` takes the first fitting host in fleet order; `random-fit` a uniformly random fitting host; ' +
      '`best-fit` the host left with the fewest free GPUs, then CPU, then memory; `frag-aware-binpack` ranks by GPUs newly ' +
      `stranded (free GPUs whose host no longer has ${FED_GPU_SHARE} of a per-GPU share of CPU and memory for them), then best fit on the ` +
      'chosen model\'s GPUs, then already-used hosts before whole ones, then least CPU and memory left; CPU-only VMs go to hosts ' +
      'without free GPUs first. Rules in src/scheduler/policies/frag-aware-binpack.policy.ts.',
    '',
    verdict,
  ].join('\n');

  process.stdout.write(`${markdown}\n`);
  if (!process.argv.includes('--no-docs')) {
    writeSection(join(root, 'docs/benchmarks.md'), markdown);
  }
}

main();
