import { UsageEventKind } from '../vms/usage-event.entity';

/** One metering event as the report reads it, with its VM's name. */
export interface MeteredEvent {
  vmId: string;
  vmName: string;
  kind: UsageEventKind;
  gpuMilli: number;
  gpuModel: string | null;
  gpuProfile: string | null;
  at: Date;
}

export interface VmUsage {
  vmId: string;
  name: string;
  gpuModel: string | null;
  gpuProfile: string | null;
  /** Milliseconds the VM was running within the window. */
  runningMs: number;
  /** Milli-GPU × milliseconds the VM held within the window (a stopped VM keeps its GPUs). */
  gpuMilliMs: number;
}

const MS_PER_HOUR = 3_600_000;

/** Hours, to 4 decimal places (a third of a second): what the report shows. */
export function hours(ms: number): number {
  return Math.round((ms / MS_PER_HOUR) * 10_000) / 10_000;
}

/** GPU-hours from milli-GPU × milliseconds, to 4 decimal places. */
export function gpuHours(milliMs: number): number {
  return hours(milliMs / 1000);
}

/**
 * Integrates each VM's events over [start, end): running time between power_on and power_off, and GPU held
 * (claims add their milli-GPUs, releases take them away) over time. Events must come per VM in time order;
 * those before `start` give the state the window opens with. VMs with nothing inside the window are left out.
 */
export function summarise(events: readonly MeteredEvent[], start: Date, end: Date): VmUsage[] {
  const from = start.getTime();
  const to = end.getTime();
  const overlap = (a: number, b: number) => Math.max(0, Math.min(b, to) - Math.max(a, from));
  const byVm = new Map<string, VmUsage & { running: boolean; since: number; heldMilli: number }>();
  const advance = (vm: VmUsage & { running: boolean; since: number; heldMilli: number }, until: number) => {
    if (vm.running) vm.runningMs += overlap(vm.since, until);
    vm.gpuMilliMs += vm.heldMilli * overlap(vm.since, until);
    vm.since = until;
  };
  for (const event of events) {
    if (event.at.getTime() >= to) continue;
    let vm = byVm.get(event.vmId);
    if (!vm) {
      vm = { vmId: event.vmId, name: event.vmName, gpuModel: null, gpuProfile: null, runningMs: 0, gpuMilliMs: 0, running: false, since: event.at.getTime(), heldMilli: 0 };
      byVm.set(event.vmId, vm);
    }
    advance(vm, event.at.getTime());
    switch (event.kind) {
      case UsageEventKind.PowerOn:
        vm.running = true;
        break;
      case UsageEventKind.PowerOff:
        vm.running = false;
        break;
      case UsageEventKind.GpuClaim:
        vm.heldMilli += event.gpuMilli;
        vm.gpuModel = event.gpuModel ?? vm.gpuModel;
        vm.gpuProfile = event.gpuProfile ?? vm.gpuProfile;
        break;
      case UsageEventKind.GpuRelease:
        vm.heldMilli = Math.max(0, vm.heldMilli - event.gpuMilli);
        break;
    }
  }
  const result: VmUsage[] = [];
  for (const vm of byVm.values()) {
    advance(vm, to);
    if (vm.runningMs === 0 && vm.gpuMilliMs === 0) continue;
    result.push({ vmId: vm.vmId, name: vm.name, gpuModel: vm.gpuModel, gpuProfile: vm.gpuProfile, runningMs: vm.runningMs, gpuMilliMs: vm.gpuMilliMs });
  }
  return result;
}
