import type { Clock } from '../common/clock';
import type { AppConfig } from '../config/app-config';
import type { UnitOfWork } from '../database/unit-of-work';
import type { OperationEntity } from './operation.entity';
import { OperationWorker } from './operation-worker';
import type { OperationsRepository } from './operations.repository';

const settle = () => new Promise((resolve) => setImmediate(resolve));

function op(id: string): OperationEntity {
  return { id, action: 'create', attempts: 1 } as OperationEntity;
}

describe(OperationWorker.name, () => {
  let claim: jest.Mock;
  let worker: OperationWorker;
  const finish: Array<() => void> = [];

  beforeEach(async () => {
    claim = jest.fn(async () => []);
    const uow = { isPostgres: true, transaction: (work: (tx: unknown) => unknown) => work({}) } as unknown as UnitOfWork;
    const ops = { claim, renewLeases: jest.fn() } as unknown as OperationsRepository;
    const config = { workerConcurrency: 2, operationLeaseMs: 30_000, operationPollMs: 60_000 } as AppConfig;
    const clock = { now: () => new Date(0) } as Clock;
    worker = new OperationWorker(config, uow, ops, clock);
    worker.register(['create'], { execute: () => new Promise<void>((resolve) => finish.push(resolve)) });
    await worker.onApplicationBootstrap();
    await settle();
  });

  afterEach(async () => {
    finish.splice(0).forEach((resolve) => resolve());
    await worker.onApplicationShutdown();
  });

  it('does not look for pending work when an operation it started itself finishes and nothing waits', async () => {
    expect(claim).toHaveBeenCalledTimes(1); // the first pass at start
    expect(worker.tryReserve(new Date(0))).not.toBeNull();
    worker.start(op('a'));
    finish.shift()!();
    await settle();
    expect(claim).toHaveBeenCalledTimes(1);
  });

  it('looks for pending work when a slot frees after a request found none free', async () => {
    for (const id of ['a', 'b']) {
      expect(worker.tryReserve(new Date(0))).not.toBeNull();
      worker.start(op(id));
    }
    // A third request finds no slot, records its operation as pending and kicks the worker, which has no slot to claim with.
    expect(worker.tryReserve(new Date(0))).toBeNull();
    worker.kick();
    await settle();
    expect(claim).toHaveBeenCalledTimes(1);
    finish.shift()!();
    await settle();
    expect(claim).toHaveBeenCalledTimes(2);
    expect(claim.mock.calls[1][4]).toBe(1); // as many as there are free slots
  });
});
