import Database from 'better-sqlite3';
import { Socket } from 'node:net';
import { Client } from 'pg';
import { FleetService } from '../../src/fleet/fleet.service';
import { UsersService } from '../../src/users/users.service';
import { CreateVmDto } from '../../src/vms/dto/create-vm.dto';
import { RequestOptions, VmsService } from '../../src/vms/vms.service';
import { DB_KINDS, reportSkippedPostgres } from './support/database';
import { finished, h100Host, newMember } from './support/fixtures';
import { MediumApp, newMediumApp } from './support/medium-app';

const WAIT: RequestOptions = { respondAsync: false, waitSeconds: 10, idempotencyKey: null, requestId: null };

/** A statement as it reached the driver: its first words, and how many statements of its connection were then unanswered. */
interface Sent {
  statement: string;
  inFlight: number;
}

/** `INSERT INTO "vms"` → `INSERT vms`, `UPDATE "hosts" SET …` → `UPDATE hosts`; other statements as their first word. */
function shortForm(sql: string): string {
  const match = /^\s*(INSERT INTO|UPDATE|DELETE FROM|SELECT)\s+"?(\w+)"?/i.exec(sql);
  return match ? `${match[1].split(' ')[0].toUpperCase()} ${match[2]}` : sql.trim().split(/\s+/)[0].toUpperCase();
}

/**
 * Records, per connection, every statement in the order it reaches the driver (node-postgres' Client#query,
 * better-sqlite3's Statement#run/#all), with how many of that connection's statements were still waiting for
 * their answers at that moment.
 */
function recordWire(): { byConnection: Map<unknown, Sent[]>; timelines: Map<unknown, string[]>; restore: () => void } {
  const byConnection = new Map<unknown, Sent[]>();
  /** Per node-postgres client: its statements as they reach the driver and `write` for each write to its socket, interleaved. */
  const timelines = new Map<unknown, string[]>();
  const clientOf = new Map<unknown, Client>();
  const inFlight = new Map<unknown, number>();
  const note = (connection: unknown, sql: string) => {
    if (!byConnection.has(connection)) byConnection.set(connection, []);
    byConnection.get(connection)!.push({ statement: shortForm(sql), inFlight: inFlight.get(connection) ?? 0 });
    if (connection instanceof Client) timelines.get(connection)?.push(shortForm(sql));
  };
  const socketWrite = { _write: Socket.prototype._write, _writev: Socket.prototype._writev! };
  for (const method of ['_write', '_writev'] as const) {
    (Socket.prototype as unknown as Record<string, unknown>)[method] = function (this: Socket, ...args: unknown[]) {
      const client = clientOf.get(this);
      if (client) timelines.get(client)?.push('write');
      return (socketWrite[method] as (...a: unknown[]) => unknown).apply(this, args);
    };
  }
  const pgQuery = Client.prototype.query;
  Client.prototype.query = function (this: Client, config: unknown, ...rest: unknown[]) {
    const stream = (this as unknown as { connection: { stream: unknown } }).connection.stream;
    if (!clientOf.has(stream)) {
      clientOf.set(stream, this);
      timelines.set(this, []);
    }
    note(this, typeof config === 'string' ? config : String((config as { text?: string }).text ?? ''));
    inFlight.set(this, (inFlight.get(this) ?? 0) + 1);
    const done = () => inFlight.set(this, (inFlight.get(this) ?? 1) - 1);
    const result = (pgQuery as (...args: unknown[]) => unknown).call(this, config, ...rest);
    if (result instanceof Promise) result.then(done, done);
    else done();
    return result;
  } as typeof Client.prototype.query;
  const statement = Object.getPrototypeOf(new Database(':memory:').prepare('SELECT 1')) as { run: (...a: unknown[]) => unknown; all: (...a: unknown[]) => unknown; database: unknown; source: string };
  const { run, all } = statement;
  statement.run = function (this: typeof statement, ...args: unknown[]) {
    note(this.database, this.source);
    return run.apply(this, args);
  };
  statement.all = function (this: typeof statement, ...args: unknown[]) {
    note(this.database, this.source);
    return all.apply(this, args);
  };
  return {
    byConnection,
    timelines,
    restore: () => {
      Client.prototype.query = pgQuery;
      Object.assign(Socket.prototype, socketWrite);
      statement.run = run;
      statement.all = all;
    },
  };
}

/** The statements of the connection that ran `marker`, from the last `START`/`BEGIN`/`SAVEPOINT` before it to the `COMMIT`/`RELEASE` after it. */
function transactionWith(byConnection: Map<unknown, Sent[]>, marker: string): Sent[] {
  for (const sent of byConnection.values()) {
    const at = sent.findIndex((s) => s.statement === marker);
    if (at < 0) continue;
    let start = at;
    while (start > 0 && !/^(START|BEGIN|SAVEPOINT)$/.test(sent[start].statement)) start--;
    let end = at;
    while (end < sent.length - 1 && !/^(COMMIT|RELEASE)$/.test(sent[end].statement)) end++;
    return sent.slice(start + 1, end);
  }
  throw new Error(`no connection ran ${marker}`);
}

/** Every transaction of every connection: the statements between each `START` and its `COMMIT`. */
function transactions(byConnection: Map<unknown, Sent[]>): Sent[][] {
  const all: Sent[][] = [];
  for (const sent of byConnection.values()) {
    let current: Sent[] | null = null;
    for (const s of sent) {
      if (s.statement === 'START') current = [];
      else if (s.statement === 'COMMIT' && current) {
        all.push(current);
        current = null;
      } else current?.push(s);
    }
  }
  return all;
}

describe.each(DB_KINDS)('statements a unit sends together, on %s', (kind) => {
  let app: MediumApp;
  let vms: VmsService;
  let fleet: FleetService;
  let users: UsersService;

  beforeAll(async () => {
    app = await newMediumApp(kind);
    vms = app.get(VmsService);
    fleet = app.get(FleetService);
    users = app.get(UsersService);
  }, 60_000);
  afterAll(() => app?.close());

  it('reach the database in lock order, a row before the rows that refer to it; on PostgreSQL without waiting for each other, in one write', async () => {
    await fleet.register(h100Host(`together-${kind}`, 'eu-together', 2, { cpu_cores: 64, memory_mib: 524_288, disk_gib: 4_000 }));
    const user = await newMember(users, `together-${kind}`);
    const spec = Object.assign(new CreateVmDto(), { name: 'together', cpu_cores: 2, memory: 4096, disk_size: 20, gpu_count: 2, gpu_model: 'h100-80gb', region: 'eu-together' });

    const wire = recordWire();
    let created;
    try {
      created = finished(await vms.create(user, spec, WAIT));
      finished(await vms.delete(user, created.vm.id, WAIT));
    } finally {
      wire.restore();
    }

    // The create's intent: after the plan's reads, the VM, its operation, then the host, its GPUs, their
    // allocations, the metering event and the user's row, in that order.
    const intent = transactionWith(wire.byConnection, 'INSERT vms');
    const writes = intent.slice(intent.findIndex((s) => s.statement === 'INSERT vms'));
    expect(writes.map((s) => s.statement)).toEqual([
      'INSERT vms',
      'INSERT operations',
      'UPDATE hosts',
      'UPDATE gpus',
      'INSERT gpu_allocations',
      'INSERT gpu_allocations',
      'INSERT usage_events',
      'UPDATE users',
    ]);
    // The delete's outcome gives back the host, its GPUs and their allocations, then the user's row.
    const outcome = transactionWith(wire.byConnection, 'UPDATE gpu_allocations');
    const release = outcome.slice(outcome.findIndex((s) => s.statement === 'UPDATE hosts'));
    expect(release.map((s) => s.statement)).toEqual(['UPDATE hosts', 'UPDATE gpus', 'UPDATE gpu_allocations', 'UPDATE users', 'INSERT usage_events']);

    if (kind === 'postgres') {
      // Each left while all the ones before it in the batch were still unanswered: one round trip for eight.
      expect(writes.map((s) => s.inFlight)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(release.map((s) => s.inFlight)).toEqual([0, 1, 2, 3, 4]);
      // And in one write to the socket: none while the batch reaches the driver, one once it all has.
      const timeline = [...wire.timelines.values()].find((t) => t.includes('INSERT vms'))!;
      const first = timeline.indexOf('INSERT vms');
      expect(timeline.slice(first, first + writes.length + 2)).toEqual([...writes.map((s) => s.statement), 'write', 'COMMIT']);

      // The plan reads the fleet without waiting for the read of what waiting requests hold.
      expect(intent.slice(0, 2).map((s) => s.inFlight)).toEqual([0, 1]);

      // Each outcome completes the operation and moves the VM together, the operation's row first.
      const statements = (t: Sent[]) => t.map((s) => s.statement);
      const all = transactions(wire.byConnection);
      const outcomes = all.filter((t) => t[0]?.statement === 'UPDATE operations');
      expect(outcomes).toHaveLength(2);
      for (const t of outcomes) expect(t.slice(0, 2)).toEqual([expect.objectContaining({ statement: 'UPDATE operations', inFlight: 0 }), expect.objectContaining({ statement: 'UPDATE vms', inFlight: 1 })]);
      // The create's outcome sends the VM's power-on event with them.
      const createOutcome = outcomes.find((t) => !statements(t).includes('UPDATE hosts'))!;
      expect(createOutcome[2]).toEqual({ statement: 'INSERT usage_events', inFlight: 2 });
      // The delete's intent reads the VM with its open operation, then takes the operation slot and moves the VM, each pair together.
      const deleteIntent = all.find((t) => statements(t).includes('INSERT operations') && !statements(t).includes('INSERT vms'))!;
      expect(deleteIntent[0]).toEqual({ statement: 'SELECT row_to_json', inFlight: 0 });
      expect(deleteIntent[1]).toEqual({ statement: 'SELECT row_to_json', inFlight: 1 });
      expect(deleteIntent.slice(-2)).toEqual([
        { statement: 'INSERT operations', inFlight: 0 },
        { statement: 'UPDATE vms', inFlight: 1 },
      ]);
    }
  });
});

reportSkippedPostgres('statements a unit sends together');
