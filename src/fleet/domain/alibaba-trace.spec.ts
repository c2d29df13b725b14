import { join } from 'node:path';
import { SchedulerHost } from '../../scheduler/scheduler.types';
import {
  HostRegistration,
  loadTraceNodesFile,
  loadTracePodsFile,
  mapTraceModel,
  parseTraceNodes,
  parseTracePods,
  taskToRequest,
  taskToRequests,
  TRACE_GPU_MODELS,
  TRACE_HOST_DISK_GIB,
  TRACE_TASK_DISK_GIB,
  TraceHost,
  TraceParseError,
  TraceTask,
  traceHostsToFleet,
  traceHostsToRegistrations,
} from './alibaba-trace';
import { canonicalGpuModel, GPU_MODEL_ID_PATTERN } from './gpu-model';

const TRACE_DIR: string = join(__dirname, '../../../test/fixtures/alibaba-gpu-v2023');
const NODE_HEADER: string = 'sn,cpu_milli,memory_mib,gpu,model';
const POD_HEADER: string =
  'name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time';

function task(overrides: Partial<TraceTask> = {}): TraceTask {
  return {
    name: 't',
    cpuMilli: 4000,
    memoryMib: 15258,
    numGpu: 1,
    gpuMilli: 1000,
    gpuSpec: [],
    qos: 'LS',
    podPhase: 'Running',
    creationTime: 0,
    deletionTime: 10,
    scheduledTime: 0,
    ...overrides,
  };
}

describe('the real trace files', () => {
  const nodes: TraceHost[] = loadTraceNodesFile(join(TRACE_DIR, 'openb_node_list_all_node.csv'));
  const fleet: SchedulerHost[] = traceHostsToFleet(nodes);

  it('has 1,523 hosts with 6,212 GPUs', () => {
    expect(fleet).toHaveLength(1523);
    expect(fleet.reduce((sum: number, host: SchedulerHost) => sum + host.gpus.length, 0)).toBe(6212);
    expect(new Set(fleet.map((host: SchedulerHost) => host.id)).size).toBe(1523);
  });

  it('maps every GPU to a valid canonical model', () => {
    const counts: Record<string, number> = {};
    for (const gpu of fleet.flatMap((host: SchedulerHost) => host.gpus)) {
      expect(gpu.model).toMatch(GPU_MODEL_ID_PATTERN);
      counts[gpu.model] = (counts[gpu.model] ?? 0) + 1;
    }
    expect(counts).toEqual({
      'alibaba-g2-32gb': 549 * 8,
      'alibaba-g3-32gb': 39 * 8,
      'v100-16gb': 19 + 28 * 4 + 8 * 8,
      'v100-32gb': 9 * 4 + 21 * 8,
      'p100-16gb': 3 + 131 * 2,
      't4-16gb': 387 * 2 + 17 * 4,
      'a10-24gb': 2,
    });
  });

  it('reads all 8,152 tasks', () => {
    const tasks: TraceTask[] = loadTracePodsFile(join(TRACE_DIR, 'openb_pod_list_default.csv'));
    expect(tasks).toHaveLength(8152);
    expect(tasks[0]).toEqual<TraceTask>({
      name: 'openb-pod-0000',
      cpuMilli: 12000,
      memoryMib: 16384,
      numGpu: 1,
      gpuMilli: 1000,
      gpuSpec: [],
      qos: 'LS',
      podPhase: 'Running',
      creationTime: 0,
      deletionTime: 12537496,
      scheduledTime: 0,
    });
    expect(tasks.filter((t: TraceTask) => t.numGpu === 0)).toHaveLength(1088);
    expect(tasks.filter((t: TraceTask) => t.scheduledTime === null)).toHaveLength(897);
  });

  it('registers the same fleet, with stable unique synthetic PCI addresses and UUIDs', () => {
    const registrations: HostRegistration[] = traceHostsToRegistrations(nodes);
    expect(registrations).toEqual(traceHostsToRegistrations(nodes));
    const gpus = registrations.flatMap((host: HostRegistration) => host.gpus);
    expect(gpus).toHaveLength(6212);
    expect(new Set(gpus.map((gpu) => gpu.uuid)).size).toBe(6212);
    for (const gpu of gpus) {
      expect(gpu.uuid).toMatch(/^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(gpu.pci_address).toMatch(/^[0-9A-F]{8}:[0-9A-F]{2}:[0-9A-F]{2}\.[0-7]$/);
      expect(canonicalGpuModel(gpu.product_name, gpu.memory_mib)).toBe(gpu.model);
    }
    registrations.forEach((host: HostRegistration, i: number) => {
      expect(host.name).toBe(fleet[i].name);
      expect(host.gpus.map((gpu) => gpu.model)).toEqual(fleet[i].gpus.map((gpu) => gpu.model));
      expect(new Set(host.gpus.map((gpu) => gpu.pci_address)).size).toBe(host.gpus.length);
    });
  });
});

describe('parseTraceNodes and traceHostsToFleet', () => {
  const csv: string = `${NODE_HEADER}\r\nn-cpu,32500,262144,0,\r\nn-gpu,96000,393216,2,V100M32\r\n\r\n`;

  it('builds active idle hosts with whole cores and per-host GPU ids', () => {
    const fleet: SchedulerHost[] = traceHostsToFleet(parseTraceNodes(csv));
    expect(fleet).toEqual<SchedulerHost[]>([
      {
        id: 'n-cpu',
        name: 'n-cpu',
        region: 'alibaba',
        state: 'active',
        cpuCores: 32,
        memoryMib: 262144,
        diskGib: TRACE_HOST_DISK_GIB,
        usedCpuCores: 0,
        usedMemoryMib: 0,
        usedDiskGib: 0,
        gpus: [],
      },
      {
        id: 'n-gpu',
        name: 'n-gpu',
        region: 'alibaba',
        state: 'active',
        cpuCores: 96,
        memoryMib: 393216,
        diskGib: TRACE_HOST_DISK_GIB,
        usedCpuCores: 0,
        usedMemoryMib: 0,
        usedDiskGib: 0,
        gpus: [
          { id: 'n-gpu-gpu0', index: 0, model: 'v100-32gb', free: true },
          { id: 'n-gpu-gpu1', index: 1, model: 'v100-32gb', free: true },
        ],
      },
    ]);
  });

  it('takes the region and disk size as options', () => {
    const [host] = traceHostsToFleet(parseTraceNodes(csv), { region: 'eu-1', diskGib: 100 });
    expect([host.region, host.diskGib]).toEqual(['eu-1', 100]);
    const [registration] = traceHostsToRegistrations(parseTraceNodes(csv), { region: 'eu-1', diskGib: 100 });
    expect([registration.region, registration.disk_gib]).toEqual(['eu-1', 100]);
  });

  it('reads columns by name, in any order', () => {
    const reordered: string = 'model,gpu,sn,memory_mib,cpu_milli\nT4,2,x,1024,8000\n';
    expect(parseTraceNodes(reordered)).toEqual<TraceHost[]>([
      { sn: 'x', cpuMilli: 8000, memoryMib: 1024, gpuCount: 2, traceModel: 'T4' },
    ]);
  });

  it.each([
    ['a missing column', 'sn,cpu_milli,memory_mib,gpu\nx,1,1,0', /lacks column "model"/],
    ['a short row', `${NODE_HEADER}\nx,1,1,0`, /line 2: expected 5 fields, found 4/],
    ['a non-numeric value', `${NODE_HEADER}\nx,lots,1,0,`, /line 2: cpu_milli "lots"/],
    ['an unknown GPU model', `${NODE_HEADER}\nx,1,1,2,H100`, /line 2: unknown trace GPU model "H100"/],
    ['GPUs without a model', `${NODE_HEADER}\nx,1,1,2,`, /unknown trace GPU model ""/],
    ['a model without GPUs', `${NODE_HEADER}\nx,1,1,0,T4`, /names GPU model "T4"/],
    ['an empty name', `${NODE_HEADER}\n,1,1,0,`, /sn is empty/],
  ])('rejects %s', (_label: string, input: string, message: RegExp) => {
    expect(() => parseTraceNodes(input)).toThrow(TraceParseError);
    expect(() => parseTraceNodes(input)).toThrow(message);
  });
});

describe('trace GPU models', () => {
  it.each([
    ['V100M16', 'v100-16gb'],
    ['V100M32', 'v100-32gb'],
    ['P100', 'p100-16gb'],
    ['T4', 't4-16gb'],
    ['A10', 'a10-24gb'],
    ['G1', 'alibaba-g1-32gb'],
    ['G2', 'alibaba-g2-32gb'],
    ['G3', 'alibaba-g3-32gb'],
  ])('%s is %s', (code: string, model: string) => {
    expect(mapTraceModel(code).model).toBe(model);
    expect(model).toMatch(GPU_MODEL_ID_PATTERN);
  });

  it('only knows its own codes', () => {
    expect(Object.keys(TRACE_GPU_MODELS)).toHaveLength(8);
    expect(() => mapTraceModel('toString')).toThrow(TraceParseError);
  });
});

describe('parseTracePods', () => {
  it('reads a constrained task and a task without deletion or scheduling time', () => {
    const csv: string = [
      POD_HEADER,
      'p1,11300,49152,1,1000,V100M16|V100M32,LS,Running,12844303,12844554,12844441',
      'p2,3152,5600,1,590,nan,BE,Pending,5,,',
    ].join('\n');
    const [constrained, pending] = parseTracePods(csv);
    expect(constrained.gpuSpec).toEqual(['v100-16gb', 'v100-32gb']);
    expect([constrained.creationTime, constrained.deletionTime, constrained.scheduledTime]).toEqual([
      12844303, 12844554, 12844441,
    ]);
    expect(pending).toMatchObject({ gpuSpec: [], gpuMilli: 590, deletionTime: null, scheduledTime: null, qos: 'BE' });
  });

  it('rejects an unknown model in gpu_spec', () => {
    expect(() => parseTracePods(`${POD_HEADER}\np,1,1,1,1000,V100|T4,LS,Running,0,1,0`)).toThrow(
      /line 2: unknown trace GPU model "V100"/,
    );
  });

  it('needs a creation time', () => {
    expect(() => parseTracePods(`${POD_HEADER}\np,1,1,1,1000,,LS,Running,,1,0`)).toThrow(/creation_time is empty/);
  });
});

describe('taskToRequest', () => {
  it('turns a whole-GPU task into a VM with that many GPUs', () => {
    expect(taskToRequest(task({ numGpu: 8, cpuMilli: 88000, memoryMib: 327680 }))).toEqual({
      cpuCores: 88,
      memoryMib: 327680,
      diskGib: TRACE_TASK_DISK_GIB,
      gpuCount: 8,
      gpuModel: null,
    });
  });

  it('gives a GPU-sharing task one whole GPU', () => {
    expect(taskToRequest(task({ numGpu: 1, gpuMilli: 460 })).gpuCount).toBe(1);
  });

  it('makes a task without GPUs CPU-only', () => {
    expect(taskToRequest(task({ numGpu: 0, gpuMilli: 0 })).gpuCount).toBe(0);
  });

  it('rounds CPU up to whole cores, at least one', () => {
    expect(taskToRequest(task({ cpuMilli: 3152 })).cpuCores).toBe(4);
    expect(taskToRequest(task({ cpuMilli: 4000 })).cpuCores).toBe(4);
    expect(taskToRequest(task({ cpuMilli: 0 })).cpuCores).toBe(1);
  });

  it('offers one request per allowed model, in gpu_spec order; taskToRequest takes the first', () => {
    const constrained: TraceTask = task({ gpuSpec: ['t4-16gb', 'a10-24gb'] });
    expect(taskToRequests(constrained).map((req) => req.gpuModel)).toEqual(['t4-16gb', 'a10-24gb']);
    expect(taskToRequest(constrained).gpuModel).toBe('t4-16gb');
    expect(taskToRequests(task()).map((req) => req.gpuModel)).toEqual([null]);
  });

  it('ignores gpu_spec for a CPU-only task', () => {
    expect(taskToRequests(task({ numGpu: 0, gpuSpec: ['t4-16gb'] }))).toHaveLength(1);
    expect(taskToRequest(task({ numGpu: 0, gpuSpec: ['t4-16gb'] })).gpuModel).toBeNull();
  });
});
