import { Injectable } from '@nestjs/common';
import { Clock } from '../common/clock';
import { NotFoundError, ValidationFailedError } from '../common/domain-errors';
import { isoTime } from '../common/iso-time';
import { UnitOfWork } from '../database/unit-of-work';
import { UsersRepository } from '../users/users.repository';
import { UsageEventsRepository } from '../vms/usage-events.repository';
import { VmsRepository } from '../vms/vms.repository';
import { UsageQueryDto, UsageReportDto } from './dto/usage.dto';
import { VmUsage, gpuHours, hours, summarise } from './usage-report';

const DAY_MS = 86_400_000;
/** The default window, back from its end. */
const DEFAULT_DAYS = 30;
/** The longest window a report covers. */
const MAX_DAYS = 366;

/** Usage reports: the metering events summed into VM-hours and GPU-hours per VM and per GPU model. */
@Injectable()
export class UsageService {
  constructor(
    private readonly uow: UnitOfWork,
    private readonly events: UsageEventsRepository,
    private readonly vms: VmsRepository,
    private readonly users: UsersRepository,
    private readonly clock: Clock,
  ) {}

  /** Any user's report (admins); a user that never existed is a 404. */
  async reportFor(userId: string, query: UsageQueryDto): Promise<UsageReportDto> {
    if (!(await this.uow.read((tx) => this.users.findById(tx, userId)))) throw new NotFoundError('user', userId);
    return this.report(userId, query);
  }

  async report(userId: string, query: UsageQueryDto): Promise<UsageReportDto> {
    const now = this.clock.now();
    const end = query.end ? new Date(query.end) : now;
    const start = query.start ? new Date(query.start) : new Date(end.getTime() - DEFAULT_DAYS * DAY_MS);
    if (start.getTime() >= end.getTime()) throw new ValidationFailedError([{ field: 'start', message: 'must be before end' }]);
    if (end.getTime() - start.getTime() > MAX_DAYS * DAY_MS) throw new ValidationFailedError([{ field: 'start', message: `must be at most ${MAX_DAYS} days before end` }]);
    // Counted up to now at most; a window that starts in the future is empty, and reads nothing.
    const until = new Date(Math.max(start.getTime(), Math.min(end.getTime(), now.getTime())));
    const usage = until.getTime() > start.getTime() ? await this.usageOf(userId, start, until) : [];
    const byModel = new Map<string, number>();
    for (const vm of usage) if (vm.gpuModel && vm.gpuMilliMs > 0) byModel.set(vm.gpuModel, (byModel.get(vm.gpuModel) ?? 0) + vm.gpuMilliMs);
    return {
      user_id: userId,
      start: isoTime(start),
      end: isoTime(until),
      vm_hours: hours(usage.reduce((sum, vm) => sum + vm.runningMs, 0)),
      gpu_hours: gpuHours(usage.reduce((sum, vm) => sum + vm.gpuMilliMs, 0)),
      gpu_hours_by_model: [...byModel].map(([gpu_model, milliMs]) => ({ gpu_model, gpu_hours: gpuHours(milliMs) })).sort((a, b) => b.gpu_hours - a.gpu_hours || a.gpu_model.localeCompare(b.gpu_model)),
      vms: usage
        .map((vm) => ({ vm_id: vm.vmId, name: vm.name, gpu_model: vm.gpuModel, gpu_profile: vm.gpuProfile, vm_hours: hours(vm.runningMs), gpu_hours: gpuHours(vm.gpuMilliMs) }))
        .sort((a, b) => b.gpu_hours - a.gpu_hours || b.vm_hours - a.vm_hours || a.vm_id.localeCompare(b.vm_id)),
    };
  }

  private async usageOf(userId: string, start: Date, until: Date): Promise<VmUsage[]> {
    const { events, names } = await this.uow.read(async (tx) => {
      const found = await this.events.listForReport(tx, userId, start, until);
      return { events: found, names: await this.vms.namesOf(tx, [...new Set(found.map((e) => e.vmId))]) };
    });
    return summarise(events.map((e) => ({ ...e, vmName: names.get(e.vmId) ?? '' })), start, until);
  }
}
