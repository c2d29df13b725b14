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

/** One row of openb_pod_list_*.csv. Times are seconds from the start of the trace. */
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
  creationTime: number;
  /** Null when the task was never deleted. */
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

const NODE_COLUMNS = ['sn', 'cpu_milli', 'memory_mib', 'gpu', 'model'] as const;
const POD_COLUMNS = [
  'name',
  'cpu_milli',
  'memory_mib',
  'num_gpu',
  'gpu_milli',
  'gpu_spec',
  'qos',
  'pod_phase',
  'creation_time',
  'deletion_time',
  'scheduled_time',
] as const;

/** Parses openb_node_list_all_node.csv (or the GPU-only list). */
export function parseTraceNodes(csv: string): TraceHost[] {
  return parseCsv(csv, NODE_COLUMNS).map((row: CsvRow<(typeof NODE_COLUMNS)[number]>): TraceHost => {
    const gpuCount: number = row.int('gpu');
    const model: string = row.text('model');
    if (gpuCount > 0) mapTraceModel(model, row.line);
    if (gpuCount === 0 && model !== '') {
      throw new TraceParseError(`line ${row.line}: a host without GPUs names GPU model "${model}"`);
    }
    return {
      sn: row.required('sn'),
      cpuMilli: row.int('cpu_milli'),
      memoryMib: row.int('memory_mib'),
      gpuCount,
      traceModel: gpuCount > 0 ? model : null,
    };
  });
}

/** Parses openb_pod_list_*.csv. */
export function parseTracePods(csv: string): TraceTask[] {
  return parseCsv(csv, POD_COLUMNS).map((row: CsvRow<(typeof POD_COLUMNS)[number]>): TraceTask => {
    const spec: string = row.text('gpu_spec');
    return {
      name: row.required('name'),
      cpuMilli: row.int('cpu_milli'),
      memoryMib: row.int('memory_mib'),
      numGpu: row.int('num_gpu'),
      gpuMilli: row.int('gpu_milli'),
      gpuSpec:
        spec === '' || spec.toLowerCase() === 'nan'
          ? []
          : spec.split('|').map((code: string) => mapTraceModel(code, row.line).model),
      qos: row.text('qos'),
      podPhase: row.text('pod_phase'),
      creationTime: row.int('creation_time'),
      deletionTime: row.optionalInt('deletion_time'),
      scheduledTime: row.optionalInt('scheduled_time'),
    };
  });
}

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

/**
 * The VM a task becomes. Whole-GPU tasks get numGpu GPUs; a GPU-sharing task
 * (0 < gpu_milli < 1000) gets one whole GPU, since a VM cannot share one;
 * numGpu 0 is CPU-only. CPU is rounded up to whole cores (at least 1).
 *
 * PlacementRequest names one model at most. For a task whose gpu_spec lists
 * several models, this returns the request for the first of them; use
 * taskToRequests to get one request per allowed model, in the trace's order,
 * and try them in turn (as bench/placement.ts does).
 */
export function taskToRequest(task: TraceTask): PlacementRequest {
  return taskToRequests(task)[0];
}

/** One request per model the task accepts, in gpu_spec order; a single unconstrained request when it accepts any. */
export function taskToRequests(task: TraceTask): PlacementRequest[] {
  const gpuCount: number = task.numGpu > 0 ? task.numGpu : 0;
  const base: PlacementRequest = {
    cpuCores: Math.max(1, Math.ceil(task.cpuMilli / 1000)),
    memoryMib: task.memoryMib,
    diskGib: TRACE_TASK_DISK_GIB,
    gpuCount,
    gpuModel: null,
  };
  if (gpuCount === 0 || task.gpuSpec.length === 0) return [base];
  return task.gpuSpec.map((gpuModel: string): PlacementRequest => ({ ...base, gpuModel }));
}

export function mapTraceModel(code: string, line?: number): TraceGpuModel {
  const model: TraceGpuModel | undefined = Object.prototype.hasOwnProperty.call(TRACE_GPU_MODELS, code)
    ? TRACE_GPU_MODELS[code]
    : undefined;
  if (model === undefined) {
    const where: string = line === undefined ? '' : `line ${line}: `;
    throw new TraceParseError(`${where}unknown trace GPU model "${code}"`);
  }
  return model;
}

export function loadTraceNodesFile(path: string): TraceHost[] {
  return parseTraceNodes(readFileSync(path, 'utf8'));
}

export function loadTracePodsFile(path: string): TraceTask[] {
  return parseTracePods(readFileSync(path, 'utf8'));
}

interface CsvRow<C extends string> {
  line: number;
  text(column: C): string;
  required(column: C): string;
  int(column: C): number;
  optionalInt(column: C): number | null;
}

/** The trace files are plain comma-separated values without quoting. */
function parseCsv<C extends string>(csv: string, columns: readonly C[]): CsvRow<C>[] {
  const lines: string[] = csv.split(/\r?\n/);
  const header: string[] = (lines[0] ?? '').replace(/^\uFEFF/, '').split(',');
  const position: Map<C, number> = new Map<C, number>();
  for (const column of columns) {
    const at: number = header.indexOf(column);
    if (at < 0) throw new TraceParseError(`header "${lines[0] ?? ''}" lacks column "${column}"`);
    position.set(column, at);
  }
  const rows: CsvRow<C>[] = [];
  for (let i: number = 1; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    const cells: string[] = lines[i].split(',');
    const line: number = i + 1;
    if (cells.length !== header.length) {
      throw new TraceParseError(`line ${line}: expected ${header.length} fields, found ${cells.length}`);
    }
    const text = (column: C): string => cells[position.get(column) as number].trim();
    const optionalInt = (column: C): number | null => {
      const value: string = text(column);
      if (value === '' || value.toLowerCase() === 'nan') return null;
      if (!/^\d+$/.test(value)) {
        throw new TraceParseError(`line ${line}: ${column} "${value}" is not a non-negative integer`);
      }
      return Number(value);
    };
    rows.push({
      line,
      text,
      required(column: C): string {
        const value: string = text(column);
        if (value === '') throw new TraceParseError(`line ${line}: ${column} is empty`);
        return value;
      },
      int(column: C): number {
        const value: number | null = optionalInt(column);
        if (value === null) throw new TraceParseError(`line ${line}: ${column} is empty`);
        return value;
      },
      optionalInt,
    });
  }
  return rows;
}
