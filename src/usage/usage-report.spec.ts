import { UsageEventKind } from '../vms/usage-event.entity';
import { MeteredEvent, gpuHours, hours, summarise } from './usage-report';

const H = 3_600_000;
const T0 = Date.parse('2026-11-01T00:00:00.000Z');
const at = (h: number) => new Date(T0 + h * H);

function event(vmId: string, kind: UsageEventKind, h: number, gpu: Partial<MeteredEvent> = {}): MeteredEvent {
  return { vmId, vmName: `name-${vmId}`, kind, gpuMilli: 0, gpuModel: null, gpuProfile: null, at: at(h), ...gpu };
}

describe('summarise', () => {
  it('integrates running time and GPU held over the window, clipping what starts before or ends after it', () => {
    const events = [
      event('a', UsageEventKind.GpuClaim, -2, { gpuMilli: 2000, gpuModel: 'h100-80gb' }),
      event('a', UsageEventKind.PowerOn, -2),
      event('a', UsageEventKind.PowerOff, 3), // stopped: keeps its GPUs
      event('a', UsageEventKind.PowerOn, 5),
      event('a', UsageEventKind.PowerOff, 12), // after the window
      event('a', UsageEventKind.GpuRelease, 12, { gpuMilli: 2000, gpuModel: 'h100-80gb' }),
    ];
    const [a] = summarise(events, at(0), at(10));
    expect(a).toMatchObject({ vmId: 'a', name: 'name-a', gpuModel: 'h100-80gb', gpuProfile: null });
    expect(hours(a.runningMs)).toBe(3 + 5);
    expect(gpuHours(a.gpuMilliMs)).toBe(2 * 10);
  });

  it('meters a fractional claim by its weight, and a resize that adds and returns GPUs by what was held when', () => {
    const events = [
      event('f', UsageEventKind.GpuClaim, 0, { gpuMilli: 429, gpuModel: 'h200-141gb', gpuProfile: '3g.71gb' }),
      event('f', UsageEventKind.GpuRelease, 4, { gpuMilli: 429, gpuModel: 'h200-141gb', gpuProfile: '3g.71gb' }),
      event('r', UsageEventKind.GpuClaim, 0, { gpuMilli: 1000, gpuModel: 'l4-24gb' }),
      event('r', UsageEventKind.GpuClaim, 2, { gpuMilli: 1000, gpuModel: 'l4-24gb' }),
      event('r', UsageEventKind.GpuRelease, 6, { gpuMilli: 2000, gpuModel: 'l4-24gb' }),
    ];
    const byId = new Map(summarise(events, at(0), at(24)).map((u) => [u.vmId, u]));
    expect(gpuHours(byId.get('f')!.gpuMilliMs)).toBe(0.429 * 4);
    expect(byId.get('f')).toMatchObject({ gpuProfile: '3g.71gb', runningMs: 0 });
    expect(gpuHours(byId.get('r')!.gpuMilliMs)).toBe(1 * 2 + 2 * 4);
  });

  it('leaves out VMs with nothing inside the window, and ignores events at or after its end', () => {
    const events = [
      event('before', UsageEventKind.PowerOn, -5),
      event('before', UsageEventKind.PowerOff, -1),
      event('after', UsageEventKind.PowerOn, 10),
      event('open', UsageEventKind.PowerOn, -1),
    ];
    const usage = summarise(events, at(0), at(10));
    expect(usage.map((u) => u.vmId)).toEqual(['open']);
    expect(hours(usage[0].runningMs)).toBe(10);
  });
});
