import { NotFoundError, ValidationFailedError } from '../../src/common/domain-errors';
import { FleetService } from '../../src/fleet/fleet.service';
import { UsageService } from '../../src/usage/usage.service';
import { UsersService } from '../../src/users/users.service';
import { CreateVmDto } from '../../src/vms/dto/create-vm.dto';
import { VmActionsService } from '../../src/vms/vm-actions.service';
import { RequestOptions, VmsService } from '../../src/vms/vms.service';
import { DB_KINDS, errorOf, reportSkippedPostgres } from './support/database';
import { finishedVm, h100Host, newMember } from './support/fixtures';
import { MediumApp, newMediumApp } from './support/medium-app';

const WAIT: RequestOptions = { respondAsync: false, waitSeconds: 10, idempotencyKey: null, requestId: null };
const H100 = 'h100-80gb';
const HOUR = 3_600_000;

/** Usage reports read the metering events the lifecycle wrote, through the real repositories, with the test clock. */
describe.each(DB_KINDS)('UsageService with real repositories on %s', (kind) => {
  let app: MediumApp;
  let usage: UsageService;
  beforeAll(async () => {
    app = await newMediumApp(kind);
    usage = app.get(UsageService);
  }, 60_000);
  afterAll(() => app?.close());

  it('sums running hours and GPU-hours held per VM and model, clipped to the window; a stopped VM keeps its GPUs', async () => {
    const region = `r-usage-${kind}`;
    await app.get(FleetService).register(h100Host(`usage-${kind}`, region, 2, { cpu_cores: 64, memory_mib: 524_288, disk_gib: 4000 }));
    const users = app.get(UsersService);
    const [owner, other] = [await newMember(users, `usage-a-${kind}`), await newMember(users, `usage-b-${kind}`)];
    const vms = app.get(VmsService);
    const actions = app.get(VmActionsService);
    const spec = Object.assign(new CreateVmDto(), { name: 'trainer', cpu_cores: 4, memory: 8192, disk_size: 20, gpu_count: 2, gpu_model: H100, region });

    const t0 = app.clock.now();
    const hour = (h: number) => new Date(t0.getTime() + h * HOUR);
    const vm = finishedVm(await vms.create(owner, spec, WAIT));
    app.clock.set(hour(1));
    finishedVm(await actions.stop(owner, vm.id, WAIT));
    app.clock.set(hour(3));
    finishedVm(await actions.start(owner, vm.id, WAIT));
    app.clock.set(hour(4));
    finishedVm(await vms.delete(owner, vm.id, WAIT));
    app.clock.set(hour(10));

    const whole = await usage.report(owner.id, { start: hour(0).toISOString(), end: hour(10).toISOString() });
    expect(whole).toEqual({
      user_id: owner.id,
      start: hour(0).toISOString(),
      end: hour(10).toISOString(),
      vm_hours: 2,
      gpu_hours: 8,
      gpu_hours_by_model: [{ gpu_model: H100, gpu_hours: 8 }],
      vms: [{ vm_id: vm.id, name: 'trainer', gpu_model: H100, gpu_profile: null, vm_hours: 2, gpu_hours: 8 }],
    });
    // A window inside: stopped from 1 h to 3 h, running again from 3 h.
    expect(await usage.report(owner.id, { start: hour(2).toISOString(), end: hour(3.5).toISOString() })).toMatchObject({ vm_hours: 0.5, gpu_hours: 3 });
    // After the delete, nothing; the default window (the last 30 days up to now) holds it all.
    expect(await usage.report(owner.id, { start: hour(5).toISOString(), end: hour(6).toISOString() })).toMatchObject({ vm_hours: 0, gpu_hours: 0, vms: [] });
    expect(await usage.report(owner.id, {})).toMatchObject({ vm_hours: 2, gpu_hours: 8, end: hour(10).toISOString() });
    // An end in the future counts up to now.
    expect((await usage.report(owner.id, { start: hour(0).toISOString(), end: hour(48).toISOString() })).end).toBe(hour(10).toISOString());
    // Each user sees their own.
    expect(await usage.report(other.id, { start: hour(0).toISOString(), end: hour(10).toISOString() })).toMatchObject({ vm_hours: 0, gpu_hours: 0, vms: [] });
    expect(await usage.reportFor(owner.id, { start: hour(0).toISOString(), end: hour(10).toISOString() })).toEqual(whole);
  });

  it('refuses a window that ends before it starts or spans more than 366 days, and an unknown user', async () => {
    const later = '2026-11-02T00:00:00Z';
    expect(await errorOf(() => usage.report('00000000-0000-7000-8000-000000000001', { start: later, end: '2026-11-01T00:00:00Z' }))).toMatchObject({
      errors: [{ field: 'start', message: 'must be before end' }],
    });
    expect(await errorOf(() => usage.report('00000000-0000-7000-8000-000000000001', { start: '2024-01-01T00:00:00Z', end: later }))).toBeInstanceOf(ValidationFailedError);
    expect(await errorOf(() => usage.reportFor('00000000-0000-7000-8000-0000000000ff', {}))).toBeInstanceOf(NotFoundError);
  });
});

reportSkippedPostgres('UsageService with real repositories');
