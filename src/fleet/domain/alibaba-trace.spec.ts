import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
  vgpuDemandShare,
  withVgpuShare,
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
    ['a model that is not a code', `${NODE_HEADER}\nx,1,1,2,H100 <script>`, /line 2: GPU model "H100 <script>" is not a model code/],
    ['GPUs without a model', `${NODE_HEADER}\nx,1,1,2,`, /line 2: GPU model "" is not a model code/],
    ['an unclosed quote', `${NODE_HEADER}\n"x,1,1,2,T4`, /line 2: a quoted field is not closed before the line ends/],
    ['text after a closing quote', `${NODE_HEADER}\n"x"y,1,1,2,T4`, /line 2: text after the closing quote of field 1/],
    ['a quote inside an unquoted field', `${NODE_HEADER}\nx"y,1,1,2,T4`, /line 2: a quote inside unquoted field 1/],
    ['a fractional count', `${NODE_HEADER}\nx,1,1,2.5,T4`, /line 2: gpu "2.5" is not a non-negative integer/],
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

  it.each([
    ['H100', 'trace-h100-32gb', 32 * 1024],
    ['A100M80', 'trace-a100-80gb', 80 * 1024],
    ['V100M16x', 'trace-v100m16x-32gb', 32 * 1024],
    ['toString', 'trace-tostring-32gb', 32 * 1024],
  ])('takes a code it does not know, %s, as a model of that name: %s', (code: string, model: string, memoryMib: number) => {
    expect(mapTraceModel(code)).toMatchObject({ model, memoryMib });
    expect(model).toMatch(GPU_MODEL_ID_PATTERN);
    expect(Object.keys(TRACE_GPU_MODELS)).toHaveLength(8);
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

  it('takes a model it does not know in gpu_spec as the same model a host with that code has', () => {
    const [task] = parseTracePods(`${POD_HEADER}\np,1,1,1,1000,H100|T4,LS,Running,0,1,0`);
    expect(task.gpuSpec).toEqual(['trace-h100-32gb', 't4-16gb']);
    const [host] = traceHostsToFleet(parseTraceNodes(`${NODE_HEADER}\nx,8000,1024,2,H100`));
    expect(host.gpus.map((gpu) => gpu.model)).toEqual(['trace-h100-32gb', 'trace-h100-32gb']);
  });

  it('reads quoted fields and whole numbers written as floats, as pandas and spreadsheets write them', () => {
    const csv: string = [
      '"name","cpu_milli","memory_mib","num_gpu","gpu_milli","gpu_spec","qos","pod_phase","creation_time","deletion_time","scheduled_time"',
      '"p1",11300.0,49152.0,1.0,1000.0,"V100M16|V100M32","LS","Running",12844303.0,12844554.0,12844441.0',
      '"p ""two""",3152,5600,1,590,"",BE,Pending,5,,',
      '" p3 , with a comma",1000,1024,0,0,,BE,Pending,7,,',
    ].join('\r\n');
    const [first, second, third] = parseTracePods(csv);
    expect(first).toMatchObject({ name: 'p1', cpuMilli: 11300, memoryMib: 49152, numGpu: 1, gpuMilli: 1000, gpuSpec: ['v100-16gb', 'v100-32gb'], creationTime: 12844303 });
    expect(second).toMatchObject({ name: 'p "two"', gpuMilli: 590, gpuSpec: [], deletionTime: null });
    expect(third).toMatchObject({ name: 'p3 , with a comma', numGpu: 0 });
  });

  it('needs a creation time', () => {
    expect(() => parseTracePods(`${POD_HEADER}\np,1,1,1,1000,,LS,Running,,1,0`)).toThrow(/creation_time is empty/);
  });

  it('reads the multigpu* column set: no gpu_spec, QoS or timing', () => {
    const [first, second] = parseTracePods('name,cpu_milli,memory_mib,num_gpu,gpu_milli\np1,12000,16384,8,1000\np2,4000,1024,1,250\n');
    expect(first).toEqual<TraceTask>({
      name: 'p1',
      cpuMilli: 12000,
      memoryMib: 16384,
      numGpu: 8,
      gpuMilli: 1000,
      gpuSpec: [],
      qos: '',
      podPhase: '',
      creationTime: null,
      deletionTime: null,
      scheduledTime: null,
    });
    expect(taskToRequest(second)).toMatchObject({ gpuCount: 0, gpuProfile: '1/4' });
  });

  it('reads gpu_spec without timing, and columns in any order', () => {
    const [task] = parseTracePods('gpu_milli,num_gpu,gpu_spec,name,memory_mib,cpu_milli\n1000,1,T4|P100,p,2048,3000\n');
    expect([task.name, task.gpuSpec, task.creationTime]).toEqual(['p', ['t4-16gb', 'p100-16gb'], null]);
  });

  it.each([
    ['a missing required column', 'name,cpu_milli,memory_mib,num_gpu\np,1,1,1', /lacks column "gpu_milli"/],
    ['more than one GPU in gpu_milli', 'name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,1,1200', /line 2: gpu_milli 1200 is more than one GPU/],
    ['GPUs without a share', 'name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,2,0', /num_gpu 2 and gpu_milli 0 must both be 0 or both positive/],
    ['a share without GPUs', 'name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,0,300', /num_gpu 0 and gpu_milli 300/],
  ])('rejects %s', (_label: string, csv: string, message: RegExp) => {
    expect(() => parseTracePods(csv)).toThrow(message);
  });
});

describe('GPU sharing modes for a replay', () => {
  const sharing = (milli: number): TraceTask => task({ numGpu: 1, gpuMilli: milli });

  it('puts in vGPU mode the share of GPU demand that vGPUs serve, counted at vGPU sizes', () => {
    // 220 → 1/4 (250) and 810 → 1 (1000) against two whole GPUs and one 8-GPU task; CPU-only tasks do not count.
    const tasks: TraceTask[] = [sharing(220), sharing(810), task({ numGpu: 1 }), task({ numGpu: 1 }), task({ numGpu: 8 }), task({ numGpu: 0, gpuMilli: 0 })];
    expect(vgpuDemandShare(tasks)).toBeCloseTo(1250 / 11250);
    expect(vgpuDemandShare([task({ numGpu: 0, gpuMilli: 0 })])).toBe(0);
  });

  it("switches whole hosts, smallest first, until each model's vGPU GPUs come closest to the share", () => {
    const fleet: SchedulerHost[] = traceHostsToFleet(
      parseTraceNodes(`${NODE_HEADER}\nbig,96000,1,8,G2\nsmall-b,8000,1,2,G2\nsmall-a,8000,1,2,G2\none,8000,1,1,T4\ncpu,8000,1,0,\n`),
    );
    const modes = (share: number): Record<string, string[]> =>
      Object.fromEntries(withVgpuShare(fleet, share).map((host: SchedulerHost) => [host.id, [...new Set(host.gpus.map((gpu) => gpu.sharingMode as string))]]));
    // G2 has 12 GPUs: 25% is 3, closest with small-a alone; 60% is 7.2, closest with both small hosts.
    expect(modes(0.25)).toEqual({ big: ['passthrough'], 'small-a': ['vgpu'], 'small-b': ['passthrough'], one: ['passthrough'], cpu: [] });
    expect(modes(0.6)).toEqual({ big: ['passthrough'], 'small-a': ['vgpu'], 'small-b': ['vgpu'], one: ['vgpu'], cpu: [] });
    expect(modes(0.7)).toEqual({ big: ['vgpu'], 'small-a': ['vgpu'], 'small-b': ['vgpu'], one: ['vgpu'], cpu: [] });
    expect(modes(1)).toEqual({ big: ['vgpu'], 'small-a': ['vgpu'], 'small-b': ['vgpu'], one: ['vgpu'], cpu: [] });
    expect(modes(0)).toEqual({ big: ['passthrough'], 'small-a': ['passthrough'], 'small-b': ['passthrough'], one: ['passthrough'], cpu: [] });
    expect(fleet[0].gpus[0].sharingMode).toBeUndefined();
    expect(() => withVgpuShare(fleet, 1.5)).toThrow(RangeError);
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

  it.each([
    [50, '1/8'],
    [125, '1/8'],
    [126, '1/4'],
    [220, '1/4'],
    [460, '1/2'],
    [500, '1/2'],
    [501, '1'],
    [810, '1'],
    [999, '1'],
  ])('gives a GPU-sharing task with gpu_milli %p the smallest vGPU that holds it, %p', (gpuMilli: number, profile: string) => {
    const req = taskToRequest(task({ numGpu: 1, gpuMilli }));
    expect([req.gpuCount, req.gpuProfile]).toEqual([0, profile]);
  });

  it('gives a whole-GPU task whole GPUs, even on one GPU', () => {
    expect(taskToRequest(task({ numGpu: 1, gpuMilli: 1000 }))).toMatchObject({ gpuCount: 1 });
    expect(taskToRequest(task({ numGpu: 1, gpuMilli: 1000 })).gpuProfile).toBeUndefined();
  });

  it('adds a MIG alternative per MIG model the fleet has, after the vGPU ones, within gpu_spec', () => {
    const sharing: TraceTask = task({ numGpu: 1, gpuMilli: 220 });
    expect(taskToRequests(sharing, { migModels: ['h200-141gb', 'a100-40gb'] }).map((req) => [req.gpuProfile, req.gpuModel])).toEqual([
      ['1/4', null],
      ['2g.35gb', 'h200-141gb'],
      ['2g.10gb', 'a100-40gb'],
    ]);
    const pinned: TraceTask = task({ numGpu: 1, gpuMilli: 100, gpuSpec: ['t4-16gb', 'h200-141gb'] });
    expect(taskToRequests(pinned, { migModels: ['h200-141gb', 'a100-40gb'] }).map((req) => [req.gpuProfile, req.gpuModel])).toEqual([
      ['1/8', 't4-16gb'],
      ['1/8', 'h200-141gb'],
      ['1g.18gb', 'h200-141gb'],
    ]);
    expect(taskToRequests(task({ numGpu: 2 }), { migModels: ['h200-141gb'] })).toHaveLength(1);
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

describe('variants of the trace a user may bring', () => {
  const pods = (...rows: string[]): string => [POD_HEADER, ...rows].join('\n');
  const nodes = (...rows: string[]): string => [NODE_HEADER, ...rows].join('\n');
  const refusal = (parse: () => unknown): string => {
    try {
      parse();
    } catch (error) {
      expect(error).toBeInstanceOf(TraceParseError);
      return (error as Error).message;
    }
    throw new Error('not refused');
  };

  it('reads lines ended by CR alone (old Mac files) as it reads LF and CR LF', () => {
    const rows = ['p1,1000,1024,1,500,V100M16 | T4,LS,Running,0,10,1', 'p2,2000,2048,0,0,,BE,Running,5,,'];
    const lf = parseTracePods(pods(...rows));
    expect(parseTracePods(pods(...rows).replace(/\n/g, '\r'))).toEqual(lf);
    expect(parseTracePods(pods(...rows).replace(/\n/g, '\r\n'))).toEqual(lf);
    // Spaces around a gpu_spec alternative are trimmed, as around any cell.
    expect(lf[0].gpuSpec).toEqual([TRACE_GPU_MODELS.V100M16.model, TRACE_GPU_MODELS.T4.model]);
  });

  it('refuses what no replay could mean, naming the line', () => {
    expect(refusal(() => parseTracePods(POD_HEADER))).toBe('no tasks: the file has a header and nothing else');
    expect(refusal(() => parseTraceNodes(`${NODE_HEADER}\n\n`))).toBe('no hosts: the file has a header and nothing else');
    expect(refusal(() => parseTraceNodes(nodes('n1,64000,262144,2000000000,V100M16')))).toBe('line 2: gpu 2000000000 is more than 64 GPUs in one host');
    expect(refusal(() => parseTraceNodes(nodes('n1,64000,262144,8,V100M16', 'n1,64000,262144,8,V100M16')))).toBe('line 3: host n1 is already on line 2');
    expect(refusal(() => parseTraceNodes(nodes('n1,500,262144,0,')))).toBe('line 2: cpu_milli 500 is less than one core (1000)');
    expect(refusal(() => parseTracePods(pods('p1,1000,1024,1000000,1000,,LS,Running,0,,')))).toBe('line 2: num_gpu 1000000 is more than 64 GPUs');
    expect(refusal(() => parseTracePods(pods('p1,1000,1024,99999999999999999999,1000,,LS,Running,0,,')))).toMatch(/^line 2: num_gpu "9+" is not a non-negative integer below 10\^15$/);
    expect(refusal(() => parseTracePods(pods('p1,1000,1024,2,500,,LS,Running,0,,')))).toMatch(/^line 2: gpu_milli 500 \(a share of one GPU\) needs num_gpu 1, not 2/);
    expect(refusal(() => parseTracePods(pods('p1,1000,1024,1,1000,,LS,Running,50,10,')))).toBe('line 2: deletion_time 10 is before creation_time 50');
    expect(refusal(() => parseTracePods(`${POD_HEADER},num_gpu\np1,1000,1024,1,1000,,LS,Running,0,,,2`))).toBe('line 1: column "num_gpu" appears twice in the header');
  });

  it('names the file in what it refuses', () => {
    const dir = mkdtempSync(join(tmpdir(), 'trace-variant-'));
    const file = join(dir, 'openb_pod_list_mine.csv');
    writeFileSync(file, pods('p1,1000,1024,1,', 'p2,1000,1024,1,1000,,LS,Running,0,,'));
    expect(refusal(() => loadTracePodsFile(file))).toBe(`${file}: line 2: expected 11 fields, found 5`);
  });
});
