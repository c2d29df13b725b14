/**
 * Loader for Alibaba's public GPU-cluster trace, cluster-trace-gpu-v2023
 * (repository alibaba/clusterdata), published with Weng et al., "Beware of
 * Fragmentation: Scheduling GPU-Sharing Workloads with Fragmentation Gradient
 * Descent", USENIX ATC 2023. Turns its node list into a fleet and its pod
 * list into VM requests so placement policies can be replayed against it.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { PlacementRequest, SchedulerGpu, SchedulerHost } from '../../scheduler/scheduler.types';
import { canonicalGpuModel } from './gpu-model';
import { MigProfile, milliGpuOf, smallestMigProfileFor, smallestVgpuProfileFor } from './gpu-profiles';

export class TraceParseError extends Error {
  readonly code: string = 'TRACE_PARSE_ERROR';

  constructor(message: string) {
    super(message);
    this.name = 'TraceParseError';
  }
}

/** One row of openb_node_list_*.csv. */
export interface TraceHost {
  sn: string;
  cpuMilli: number;
  memoryMib: number;
  gpuCount: number;
  /** The trace's own model code (`V100M16`, `T4`, `G2`…); null for CPU-only hosts. */
  traceModel: string | null;
}

/**
 * One row of openb_pod_list_*.csv. Times are seconds from the start of the
 * trace. Only name, cpu_milli, memory_mib, num_gpu and gpu_milli are in every
 * file: the multigpu* variants have no gpu_spec, QoS or timing, so their
 * tasks have no constraint, empty qos and podPhase, and null times (they
 * arrive in file order and never depart).
 */
export interface TraceTask {
  name: string;
  cpuMilli: number;
  memoryMib: number;
  numGpu: number;
  /** Per GPU, in thousandths; below 1000 only for GPU-sharing tasks (numGpu 1). */
  gpuMilli: number;
  /** Acceptable canonical models in the trace's order; empty means any. */
  gpuSpec: string[];
  qos: string;
  podPhase: string;
  /** Null when the file has no timing. */
  creationTime: number | null;
  /** Null when the task was never deleted, or the file has no timing. */
  deletionTime: number | null;
  scheduledTime: number | null;
}

/** The app's host-registration body. */
export interface HostRegistration {
  name: string;
  region: string;
  cpu_cores: number;
  memory_mib: number;
  disk_gib: number;
  gpus: GpuRegistration[];
}

export interface GpuRegistration {
  index: number;
  product_name: string;
  memory_mib: number;
  pci_address: string;
  uuid: string;
  model: string;
}

export interface TraceGpuModel {
  /** Canonical id, equal to canonicalGpuModel(productName, memoryMib). */
  model: string;
  /** What nvidia-smi would print as product_name. */
  productName: string;
  /** What nvidia-smi would print as fb_memory_usage/total. */
  memoryMib: number;
}

/**
 * G1–G3 are "undisclosed internal GPU codes" in the trace, so their memory is
 * unknown. They get this placeholder (32 GiB) so that their ids keep the
 * `<name>-<n>gb` form of GPU_MODEL_ID_PATTERN and registrations carry a
 * positive memory size; placement never looks at GPU memory.
 */
export const UNDISCLOSED_GPU_MEMORY_MIB: number = 32 * 1024;

function traceModel(productName: string, memoryMib: number): TraceGpuModel {
  return { model: canonicalGpuModel(productName, memoryMib), productName, memoryMib };
}

/** The trace's model codes, with the product names and memory totals nvidia-smi reports for those cards. */
export const TRACE_GPU_MODELS: Readonly<Record<string, TraceGpuModel>> = Object.freeze({
  V100M16: traceModel('Tesla V100-SXM2-16GB', 16160), // v100-16gb
  V100M32: traceModel('Tesla V100-SXM2-32GB', 32510), // v100-32gb
  P100: traceModel('Tesla P100-PCIE-16GB', 16280), // p100-16gb
  T4: traceModel('Tesla T4', 15360), // t4-16gb
  A10: traceModel('NVIDIA A10', 23028), // a10-24gb
  G1: traceModel('Alibaba G1', UNDISCLOSED_GPU_MEMORY_MIB), // alibaba-g1-32gb
  G2: traceModel('Alibaba G2', UNDISCLOSED_GPU_MEMORY_MIB), // alibaba-g2-32gb
  G3: traceModel('Alibaba G3', UNDISCLOSED_GPU_MEMORY_MIB), // alibaba-g3-32gb
});

/** The trace has no disk sizes: hosts get more disk than their CPU lets them fill with trace VMs. */
export const TRACE_HOST_DISK_GIB: number = 4096;
/** Disk given to every VM made from a trace task. */
export const TRACE_TASK_DISK_GIB: number = 20;
export const TRACE_REGION: string = 'alibaba';

export interface TraceFleetOptions {
  region?: string;
  diskGib?: number;
}

/** More GPUs than any server holds (an HGX board has 8, the largest chassis 16): a typo, refused before it costs memory. */
export const MAX_TRACE_GPUS: number = 64;

const NODE_COLUMNS = ['sn', 'cpu_milli', 'memory_mib', 'gpu', 'model'] as const;
const POD_COLUMNS = ['name', 'cpu_milli', 'memory_mib', 'num_gpu', 'gpu_milli'] as const;
const OPTIONAL_POD_COLUMNS = ['gpu_spec', 'qos', 'pod_phase', 'creation_time', 'deletion_time', 'scheduled_time'] as const;

/** Parses openb_node_list_all_node.csv (or the GPU-only list). */
export function parseTraceNodes(csv: string): TraceHost[] {
  const seen: Map<string, number> = new Map<string, number>();
  const hosts: TraceHost[] = parseCsv(csv, NODE_COLUMNS).map((row: CsvRow<(typeof NODE_COLUMNS)[number]>): TraceHost => {
    const gpuCount: number = row.int('gpu');
    const model: string = row.text('model');
    if (gpuCount > MAX_TRACE_GPUS) throw new TraceParseError(`line ${row.line}: gpu ${gpuCount} is more than ${MAX_TRACE_GPUS} GPUs in one host`);
    if (gpuCount > 0) mapTraceModel(model, row.line);
    if (gpuCount === 0 && model !== '') {
      throw new TraceParseError(`line ${row.line}: a host without GPUs names GPU model "${model}"`);
    }
    const sn: string = row.required('sn');
    const earlier: number | undefined = seen.get(sn);
    if (earlier !== undefined) throw new TraceParseError(`line ${row.line}: host ${sn} is already on line ${earlier}`);
    seen.set(sn, row.line);
    const cpuMilli: number = row.int('cpu_milli');
    if (cpuMilli < 1000) throw new TraceParseError(`line ${row.line}: cpu_milli ${cpuMilli} is less than one core (1000)`);
    return {
      sn,
      cpuMilli,
      memoryMib: row.int('memory_mib'),
      gpuCount,
      traceModel: gpuCount > 0 ? model : null,
    };
  });
  if (hosts.length === 0) throw new TraceParseError('no hosts: the file has a header and nothing else');
  return hosts;
}

/**
 * Parses openb_pod_list_*.csv, with or without the optional columns
 * (gpu_spec, qos, pod_phase and the three times). creation_time must be
 * given on every row when its column is there.
 */
export function parseTracePods(csv: string): TraceTask[] {
  const tasks: TraceTask[] = parseCsv(csv, POD_COLUMNS, OPTIONAL_POD_COLUMNS).map((row: CsvRow<PodColumn>): TraceTask => {
    const spec: string = row.text('gpu_spec');
    const numGpu: number = row.int('num_gpu');
    const gpuMilli: number = row.int('gpu_milli');
    if (numGpu > MAX_TRACE_GPUS) throw new TraceParseError(`line ${row.line}: num_gpu ${numGpu} is more than ${MAX_TRACE_GPUS} GPUs`);
    if (gpuMilli > 1000) throw new TraceParseError(`line ${row.line}: gpu_milli ${gpuMilli} is more than one GPU (1000)`);
    if ((numGpu === 0) !== (gpuMilli === 0)) {
      throw new TraceParseError(`line ${row.line}: num_gpu ${numGpu} and gpu_milli ${gpuMilli} must both be 0 or both positive`);
    }
    if (numGpu > 1 && gpuMilli < 1000) {
      throw new TraceParseError(`line ${row.line}: gpu_milli ${gpuMilli} (a share of one GPU) needs num_gpu 1, not ${numGpu}: a task on several GPUs takes them whole`);
    }
    const creationTime: number | null = row.has('creation_time') ? row.int('creation_time') : null;
    const deletionTime: number | null = row.optionalInt('deletion_time');
    if (creationTime !== null && deletionTime !== null && deletionTime < creationTime) {
      throw new TraceParseError(`line ${row.line}: deletion_time ${deletionTime} is before creation_time ${creationTime}`);
    }
    return {
      name: row.required('name'),
      cpuMilli: row.int('cpu_milli'),
      memoryMib: row.int('memory_mib'),
      numGpu,
      gpuMilli,
      gpuSpec:
        spec === '' || spec.toLowerCase() === 'nan'
          ? []
          : spec.split('|').map((code: string) => mapTraceModel(code.trim(), row.line).model),
      qos: row.text('qos'),
      podPhase: row.text('pod_phase'),
      creationTime,
      deletionTime,
      scheduledTime: row.optionalInt('scheduled_time'),
    };
  });
  if (tasks.length === 0) throw new TraceParseError('no tasks: the file has a header and nothing else');
  return tasks;
}

type PodColumn = (typeof POD_COLUMNS)[number] | (typeof OPTIONAL_POD_COLUMNS)[number];

/** The trace's hosts as scheduler hosts, all active and idle. GPU ids are `${sn}-gpu${i}`. */
export function traceHostsToFleet(hosts: readonly TraceHost[], opts: TraceFleetOptions = {}): SchedulerHost[] {
  return hosts.map((host: TraceHost): SchedulerHost => {
    const model: string | null = host.traceModel === null ? null : mapTraceModel(host.traceModel).model;
    const gpus: SchedulerGpu[] = [];
    for (let i: number = 0; i < host.gpuCount; i++) {
      gpus.push({ id: `${host.sn}-gpu${i}`, index: i, model: model as string, free: true });
    }
    return {
      id: host.sn,
      name: host.sn,
      region: opts.region ?? TRACE_REGION,
      state: 'active',
      cpuCores: Math.floor(host.cpuMilli / 1000),
      memoryMib: host.memoryMib,
      diskGib: opts.diskGib ?? TRACE_HOST_DISK_GIB,
      usedCpuCores: 0,
      usedMemoryMib: 0,
      usedDiskGib: 0,
      gpus,
    };
  });
}

/**
 * The same fleet as host-registration bodies. PCI addresses (bus 0x10 + i)
 * and UUIDs (hashed from sn and index) are synthetic but stable, so loading
 * the trace twice registers the same GPUs.
 */
export function traceHostsToRegistrations(
  hosts: readonly TraceHost[],
  opts: TraceFleetOptions = {},
): HostRegistration[] {
  return hosts.map((host: TraceHost): HostRegistration => {
    const gpuModel: TraceGpuModel | null = host.traceModel === null ? null : mapTraceModel(host.traceModel);
    const gpus: GpuRegistration[] = [];
    for (let i: number = 0; i < host.gpuCount; i++) {
      const model: TraceGpuModel = gpuModel as TraceGpuModel;
      gpus.push({
        index: i,
        product_name: model.productName,
        memory_mib: model.memoryMib,
        pci_address: syntheticPciAddress(i),
        uuid: syntheticGpuUuid(host.sn, i),
        model: model.model,
      });
    }
    return {
      name: host.sn,
      region: opts.region ?? TRACE_REGION,
      cpu_cores: Math.floor(host.cpuMilli / 1000),
      memory_mib: host.memoryMib,
      disk_gib: opts.diskGib ?? TRACE_HOST_DISK_GIB,
      gpus,
    };
  });
}

function syntheticPciAddress(index: number): string {
  const bus: string = (0x10 + index).toString(16).toUpperCase().padStart(2, '0');
  return `00000000:${bus}:00.0`;
}

function syntheticGpuUuid(sn: string, index: number): string {
  const hex: string = createHash('sha256').update(`${sn}/gpu/${index}`).digest('hex');
  return `GPU-${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

export interface TaskMappingOptions {
  /**
   * Models that have GPUs in MIG mode in the fleet: a GPU-sharing task that
   * may run on one of them also gets a request for the smallest MIG profile
   * of that model that holds its share, after its vGPU requests.
   */
  migModels?: readonly string[];
}

/**
 * The VM a task becomes. Whole-GPU tasks get numGpu whole GPUs (a task on
 * several GPUs always takes them whole). A GPU-sharing task (numGpu 1,
 * gpu_milli < 1000) gets the smallest time-sliced vGPU that holds its share
 * (gpu_milli 220 → `1/4`, 810 → `1`). numGpu 0 is CPU-only. CPU is rounded
 * up to whole cores (at least 1).
 *
 * PlacementRequest names one model at most. For a task whose gpu_spec lists
 * several models, this returns the request for the first of them; use
 * taskToRequests to get every alternative, in the order to try them (as
 * bench/placement.ts does).
 */
export function taskToRequest(task: TraceTask, opts: TaskMappingOptions = {}): PlacementRequest {
  return taskToRequests(task, opts)[0];
}

/**
 * Every request the task may become, in the order to try them: one per
 * model the task accepts (gpu_spec order; a single unconstrained request when
 * it accepts any), then, for a GPU-sharing task, one MIG request per allowed
 * model in `opts.migModels`.
 */
export function taskToRequests(task: TraceTask, opts: TaskMappingOptions = {}): PlacementRequest[] {
  const sharing: boolean = task.numGpu === 1 && task.gpuMilli > 0 && task.gpuMilli < 1000;
  const base: PlacementRequest = {
    cpuCores: Math.max(1, Math.ceil(task.cpuMilli / 1000)),
    memoryMib: task.memoryMib,
    diskGib: TRACE_TASK_DISK_GIB,
    gpuCount: sharing ? 0 : Math.max(0, task.numGpu),
    gpuModel: null,
  };
  if (task.numGpu <= 0) return [base];
  const models: (string | null)[] = task.gpuSpec.length === 0 ? [null] : task.gpuSpec;
  if (!sharing) return models.map((gpuModel: string | null): PlacementRequest => ({ ...base, gpuModel }));
  const vgpu: string = smallestVgpuProfileFor(task.gpuMilli).name;
  const requests: PlacementRequest[] = models.map(
    (gpuModel: string | null): PlacementRequest => ({ ...base, gpuProfile: vgpu, gpuModel }),
  );
  for (const model of opts.migModels ?? []) {
    if (task.gpuSpec.length > 0 && !task.gpuSpec.includes(model)) continue;
    const mig: MigProfile | null = smallestMigProfileFor(model, task.gpuMilli);
    if (mig !== null) requests.push({ ...base, gpuProfile: mig.name, gpuModel: model });
  }
  return requests;
}

/**
 * The share of the tasks' GPU demand that time-sliced vGPUs would serve:
 * GPU-sharing tasks counted at their vGPU size, whole-GPU tasks at numGpu,
 * over the total. The replay puts this share of each model's GPUs in vgpu
 * mode, as an admin sizing the pools to the expected workload would.
 */
export function vgpuDemandShare(tasks: readonly TraceTask[]): number {
  let shared: number = 0;
  let total: number = 0;
  for (const task of tasks) {
    if (task.numGpu <= 0) continue;
    const milli: number = milliGpuOf(taskToRequest(task));
    total += milli;
    if (task.numGpu === 1 && task.gpuMilli < 1000) shared += milli;
  }
  return total === 0 ? 0 : shared / total;
}

/**
 * A copy of the fleet with about `share` of each model's GPUs in vgpu mode
 * and the rest in passthrough. Whole hosts switch, smallest GPU count first
 * (then by id): multi-GPU VMs need the large hosts whole, and a host with
 * one mode is how an operator would run it. A host is switched when that
 * brings the model's vGPU count closer to its target.
 */
export function withVgpuShare(fleet: readonly SchedulerHost[], share: number): SchedulerHost[] {
  if (!(share >= 0 && share <= 1)) throw new RangeError(`vGPU share must be in [0, 1], got ${share}`);
  const byModel: Map<string, SchedulerHost[]> = new Map<string, SchedulerHost[]>();
  for (const host of fleet) {
    if (host.gpus.length === 0) continue;
    const model: string = host.gpus[0].model;
    byModel.set(model, [...(byModel.get(model) ?? []), host]);
  }
  const vgpuHosts: Set<string> = new Set<string>();
  for (const hosts of byModel.values()) {
    const target: number = share * hosts.reduce((sum: number, host: SchedulerHost) => sum + host.gpus.length, 0);
    let taken: number = 0;
    const ordered: SchedulerHost[] = [...hosts].sort(
      (a: SchedulerHost, b: SchedulerHost) => a.gpus.length - b.gpus.length || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    );
    for (const host of ordered) {
      if (Math.abs(taken + host.gpus.length - target) >= Math.abs(taken - target)) continue;
      taken += host.gpus.length;
      vgpuHosts.add(host.id);
    }
  }
  return fleet.map((host: SchedulerHost): SchedulerHost => ({
    ...host,
    gpus: host.gpus.map((gpu: SchedulerGpu): SchedulerGpu => ({
      ...gpu,
      sharingMode: vgpuHosts.has(host.id) ? 'vgpu' : 'passthrough',
      usedSlots: 0,
      vgpuProfile: null,
    })),
  }));
}

/** A model code this loader does not know: letters, digits, dots, hyphens and underscores, as the trace's own are. */
const MODEL_CODE: RegExp = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/;
/** `V100M32`-style codes carry the card's memory in GB after an `M`. */
const MEMORY_SUFFIX: RegExp = /^(.*?[A-Za-z0-9])M([1-9]\d{0,3})$/;

/**
 * The model for a trace's code: the trace's own codes map to the cards they
 * name (TRACE_GPU_MODELS); any other code (a variant of the trace with newer
 * cards, say `A100M80` or `H100`) is taken as a model of that name, with the
 * memory its `M<GB>` suffix gives or, without one, the undisclosed
 * placeholder, in the `trace-` namespace so it cannot pass for a real card's
 * id. Placement only compares models, so every host and task naming the
 * same code agree. An empty or malformed code is refused.
 */
export function mapTraceModel(code: string, line?: number): TraceGpuModel {
  if (Object.prototype.hasOwnProperty.call(TRACE_GPU_MODELS, code)) return TRACE_GPU_MODELS[code];
  if (!MODEL_CODE.test(code)) {
    const where: string = line === undefined ? '' : `line ${line}: `;
    const shown: string = code.length > 40 ? `${code.slice(0, 40)}…` : code;
    throw new TraceParseError(`${where}GPU model "${shown}" is not a model code (letters, digits, ".", "-" or "_", at most 32)`);
  }
  const sized: RegExpExecArray | null = MEMORY_SUFFIX.exec(code);
  return sized
    ? traceModel(`Trace ${sized[1]}`, Number(sized[2]) * 1024)
    : traceModel(`Trace ${code}`, UNDISCLOSED_GPU_MEMORY_MIB);
}

export function loadTraceNodesFile(path: string): TraceHost[] {
  return inFile(path, parseTraceNodes);
}

export function loadTracePodsFile(path: string): TraceTask[] {
  return inFile(path, parseTracePods);
}

/** Parses the file, naming it in any TraceParseError. */
function inFile<T>(path: string, parse: (csv: string) => T): T {
  try {
    return parse(readFileSync(path, 'utf8'));
  } catch (error) {
    if (error instanceof TraceParseError) throw new TraceParseError(`${path}: ${error.message}`);
    throw error;
  }
}

interface CsvRow<C extends string> {
  line: number;
  /** Whether the file has this (optional) column. */
  has(column: C): boolean;
  /** The cell, trimmed; '' when the file lacks the column. */
  text(column: C): string;
  required(column: C): string;
  int(column: C): number;
  optionalInt(column: C): number | null;
}

/**
 * The cells of one line of comma-separated values: plain, as the trace's own
 * files are, or with RFC 4180 quoting (a field in double quotes may hold
 * commas, and `""` stands for a quote), as a spreadsheet or pandas may write
 * them. A quoted field cannot span lines.
 */
export function splitCsvLine(text: string, line: number): string[] {
  if (!text.includes('"')) return text.split(',');
  const cells: string[] = [];
  let i: number = 0;
  for (;;) {
    let cell: string = '';
    while (text[i] === ' ') i++;
    if (text[i] === '"') {
      i++;
      for (;;) {
        const quote: number = text.indexOf('"', i);
        if (quote < 0) throw new TraceParseError(`line ${line}: a quoted field is not closed before the line ends`);
        cell += text.slice(i, quote);
        i = quote + 1;
        if (text[i] !== '"') break;
        cell += '"';
        i++;
      }
      while (text[i] === ' ') i++;
      if (i < text.length && text[i] !== ',') {
        throw new TraceParseError(`line ${line}: text after the closing quote of field ${cells.length + 1}`);
      }
    } else {
      const comma: number = text.indexOf(',', i);
      const end: number = comma < 0 ? text.length : comma;
      cell = text.slice(i, end);
      if (cell.includes('"')) throw new TraceParseError(`line ${line}: a quote inside unquoted field ${cells.length + 1}`);
      i = end;
    }
    cells.push(cell);
    if (i >= text.length) return cells;
    i++; // the comma
  }
}

/** The trace files: comma-separated values with a header line naming the columns. */
function parseCsv<C extends string, O extends string = never>(
  csv: string,
  columns: readonly C[],
  optionalColumns: readonly O[] = [],
): CsvRow<C | O>[] {
  // CR LF, LF, or a lone CR (old Mac files): every one ends a line.
  const lines: string[] = csv.split(/\r\n|\r|\n/);
  const header: string[] = splitCsvLine((lines[0] ?? '').replace(/^\uFEFF/, ''), 1).map((name: string) => name.trim());
  const joined: string = header.join(',');
  const shown: string = joined.length > 120 ? `${joined.slice(0, 120)}…` : joined;
  const twice: string | undefined = header.find((name: string, i: number) => name !== '' && header.indexOf(name) !== i);
  if (twice !== undefined) throw new TraceParseError(`line 1: column "${twice}" appears twice in the header`);
  const position: Map<C | O, number> = new Map<C | O, number>();
  for (const column of columns) {
    const at: number = header.indexOf(column);
    if (at < 0) throw new TraceParseError(`line 1: the header "${shown}" lacks column "${column}"`);
    position.set(column, at);
  }
  for (const column of optionalColumns) {
    const at: number = header.indexOf(column);
    if (at >= 0) position.set(column, at);
  }
  const rows: CsvRow<C | O>[] = [];
  for (let i: number = 1; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    const line: number = i + 1;
    const cells: string[] = splitCsvLine(lines[i], line);
    if (cells.length !== header.length) {
      throw new TraceParseError(`line ${line}: expected ${header.length} fields, found ${cells.length}`);
    }
    const text = (column: C | O): string => {
      const at: number | undefined = position.get(column);
      return at === undefined ? '' : cells[at].trim();
    };
    const optionalInt = (column: C | O): number | null => {
      const value: string = text(column);
      if (value === '' || value.toLowerCase() === 'nan') return null;
      // At most 15 digits: every such number is exact in a double, and larger ones are no real trace's.
      // A whole number may be written as a float (`12000.0`): pandas does so for a column with a missing value.
      if (!/^\d{1,15}(?:\.0+)?$/.test(value)) {
        throw new TraceParseError(`line ${line}: ${column} "${value.slice(0, 40)}" is not a non-negative integer below 10^15`);
      }
      return Number(value);
    };
    rows.push({
      line,
      has: (column: C | O): boolean => position.has(column),
      text,
      required(column: C | O): string {
        const value: string = text(column);
        if (value === '') throw new TraceParseError(`line ${line}: ${column} is empty`);
        return value;
      },
      int(column: C | O): number {
        const value: number | null = optionalInt(column);
        if (value === null) throw new TraceParseError(`line ${line}: ${column} is empty`);
        return value;
      },
      optionalInt,
    });
  }
  return rows;
}
