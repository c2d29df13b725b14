import type BetterSqlite3 from 'better-sqlite3';
import type { Logger } from 'typeorm';
import { CapacityService } from '../../src/fleet/capacity.service';
import { FleetService } from '../../src/fleet/fleet.service';
import { MetricsService } from '../../src/metrics/metrics.service';
import { OperationsService } from '../../src/operations/operations.service';
import { ReconcilerService } from '../../src/reconciler/reconciler.service';
import { UsersService } from '../../src/users/users.service';
import { CreateVmDto } from '../../src/vms/dto/create-vm.dto';
import { VmOutcome } from '../../src/vms/vm-outcome';
import { RequestOptions, VmsService } from '../../src/vms/vms.service';
import { sleep } from './support/database';
import { finishedVm, h100Host, newMember } from './support/fixtures';
import { MediumApp, newMediumApp } from './support/medium-app';

const WAIT: RequestOptions = { respondAsync: false, waitSeconds: 10, idempotencyKey: null, requestId: null };
const ASYNC: RequestOptions = { respondAsync: true, waitSeconds: null, idempotencyKey: null, requestId: null };
const H100 = 'h100-80gb';
const REGION = 'plans';

/**
 * Tables a statement may read whole: the fleet (a placement looks at every
 * active host, and their number is the fleet's size, not the history's).
 * Every other table grows with use — the operation log is never pruned — so
 * a statement that scans one costs more with every VM ever made.
 */
const BOUNDED_TABLES = new Set(['hosts', 'gpus', 'installation', 'migrations', 'dummy_table']);

/**
 * The two reads of every VM record that remain, both periodic rather than per
 * request: a metrics scrape counts VMs by status (deleted ones included), and
 * a reconciliation pass lists the VMs that hold resources. Named here so that
 * a new one is seen.
 */
const PERIODIC_VM_READS = [/GROUP BY "v"\."status"$/, /WHERE "v"\."released_at" IS NULL OR "v"\."status" IN \(\?, \?\)$/];

const spec = (overrides: Partial<CreateVmDto>) => Object.assign(new CreateVmDto(), { name: 'plans', cpu_cores: 1, memory: 1024, disk_size: 10, ...overrides });

/**
 * SQLite's plan for every statement the API and its background loops run:
 * create, read, list, the operation log, delete, the capacity queue, the
 * worker's claims and heartbeats, metrics and reconciliation. Only SQLite has
 * a deterministic `EXPLAIN QUERY PLAN`; the statements are the same on
 * PostgreSQL.
 */
describe('Query plans on sqlite', () => {
  let app: MediumApp;
  const seen = new Map<string, unknown[]>();

  beforeAll(async () => {
    app = await newMediumApp('sqlite', { OPERATION_LEASE_MS: '3000' });
    const logger: Logger = app.dataSource.logger;
    const logQuery = logger.logQuery.bind(logger);
    logger.logQuery = (query, parameters, runner) => {
      if (!seen.has(query)) seen.set(query, Array.isArray(parameters) ? parameters : []);
      logQuery(query, parameters, runner);
    };
  }, 60_000);
  afterAll(() => app?.close());

  it('no statement on the request path, in the worker or in the capacity queue reads a table that grows with use in full', async () => {
    const fleet = app.get(FleetService);
    const vms = app.get(VmsService);
    const user = await newMember(app.get(UsersService), 'plans');
    await fleet.register({ ...h100Host('plans-1', REGION, 1, { cpu_cores: 64, memory_mib: 262_144, disk_gib: 2000 }) });

    const holder = finishedVm(await vms.create(user, spec({ name: 'holder', gpu_count: 1, gpu_model: H100, region: REGION }), WAIT));
    const cpu = finishedVm(await vms.create(user, spec({ name: 'cpu', labels: ['ml'], public_ip: '203.0.113.7' }), WAIT));
    await vms.get(user, cpu.id);
    await vms.list(user, {});
    await vms.list(user, { status: 'created' as never, label: 'ml' });
    await vms.operations(user, cpu.id);
    // Nothing free: this one waits in the capacity queue until the holder goes.
    const waiting = await vms.create(user, spec({ name: 'waits', gpu_count: 1, gpu_model: H100, region: REGION, wait_for_capacity_seconds: 600 }), ASYNC);
    const operationId = (waiting as Extract<VmOutcome, { kind: 'accepted' }>).operationId;
    await app.get(OperationsService).get(user, operationId);
    await app.get(CapacityService).gpuCapacity();
    finishedVm(await vms.delete(user, holder.id, WAIT));
    for (let i = 0; i < 400 && (await app.get(OperationsService).get(user, operationId)).status !== 'succeeded'; i++) await sleep(25);
    expect((await app.get(OperationsService).get(user, operationId)).status).toBe('succeeded');
    finishedVm(await vms.delete(user, cpu.id, WAIT));
    await app.get(MetricsService).render();
    await app.get(ReconcilerService).runNow();
    // The worker's heartbeat renews leases every OPERATION_LEASE_MS / 3 while it runs something.
    await sleep(1100);

    const db = (app.dataSource.driver as unknown as { databaseConnection: BetterSqlite3.Database }).databaseConnection;
    const scans: string[] = [];
    for (const [sql, parameters] of seen) {
      if (!/^\s*(SELECT|UPDATE|DELETE|INSERT)/i.test(sql) || PERIODIC_VM_READS.some((read) => read.test(sql))) continue;
      const plan = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...(parameters as unknown[])) as { detail: string }[];
      for (const { detail } of plan) {
        // "SCAN o" reads a whole table; "SCAN o USING INDEX ix" reads a (partial) index, which is bounded by what it holds.
        // "SCAN (subquery-1)" reads the rows its subquery made, whose own plan is checked on its own lines.
        const scan = /^SCAN (\S+)$/.exec(detail);
        if (scan && /^\(subquery-\d+\)$/.test(scan[1])) continue;
        if (scan && !BOUNDED_TABLES.has(tableOf(sql, scan[1]))) scans.push(`${detail} (${tableOf(sql, scan[1])}) in: ${sql}`);
      }
    }
    expect(seen.size).toBeGreaterThan(30);
    expect(scans).toEqual([]);
  }, 60_000);
});

/** The table an alias in `sql` stands for (`FROM "operations" "o"` → operations); the name itself when it is no alias. */
function tableOf(sql: string, alias: string): string {
  const found = new RegExp(`"?(\\w+)"?\\s+(?:AS\\s+)?"?${alias}"?(?=[\\s,)]|$)`, 'i').exec(sql.replace(/\b(FROM|JOIN)\b/gi, ' $1 '));
  return found && !/^(FROM|JOIN|AS)$/i.test(found[1]) ? found[1] : alias;
}
