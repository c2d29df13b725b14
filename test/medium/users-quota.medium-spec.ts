import { UserRole } from '../../src/common/user-role';
import { constraintViolation } from '../../src/database/constraint-violation';
import { UserEntity } from '../../src/users/user.entity';
import { QuotaDefaults, ResourceAmounts, UsersRepository, defaultLimits } from '../../src/users/users.repository';
import { DB_KINDS, errorOf, reportSkippedPostgres, useTestDatabase } from './support/database';
import { T0, at, ids, insertUser, userEntity } from './support/fixtures';
import { repositoriesOf } from './support/repositories';

const DEFAULTS: QuotaDefaults = { vcpus: 16, memoryMib: 65_536, gpus: 2, vms: 3 };
/** The defaults as usage amounts: GPUs in milli-GPUs. */
const DEFAULT_LIMITS: ResourceAmounts = defaultLimits(DEFAULTS);
const ONE_VM: ResourceAmounts = { vcpus: 4, memoryMib: 8192, gpuMilli: 1000, vms: 1 };

describe.each(DB_KINDS)('UsersRepository quota accounting on %s', (kind) => {
  const db = useTestDatabase(kind);
  let users: UsersRepository;
  beforeEach(() => {
    users = repositoriesOf(db()).users;
  });

  const usage = async (id: string) => {
    const u = await db().uow.read((tx) => users.findById(tx, id));
    return { vcpus: u!.usedVcpus, memoryMib: u!.usedMemoryMib, gpuMilli: u!.usedGpuMilli, vms: u!.usedVms };
  };
  const consume = (id: string, amounts: ResourceAmounts, defaults = DEFAULTS) =>
    db().uow.transaction((tx) => users.tryConsume(tx, id, amounts, defaults));
  const release = (id: string, amounts: ResourceAmounts) => db().uow.transaction((tx) => users.release(tx, id, amounts));

  it('tryConsume adds to usage while every limit holds, up to and including the limit', async () => {
    const id = await db().uow.transaction((tx) => insertUser(tx));
    expect(await consume(id, ONE_VM)).toBe(true);
    expect(await usage(id)).toEqual(ONE_VM);
    expect(await consume(id, { vcpus: 12, memoryMib: 57_344, gpuMilli: 1000, vms: 2 })).toBe(true);
    expect(await usage(id)).toEqual(DEFAULT_LIMITS);
    expect(await consume(id, { vcpus: 0, memoryMib: 0, gpuMilli: 0, vms: 0 })).toBe(true);
  });

  it.each([
    ['vcpus', { vcpus: 17, memoryMib: 1, gpuMilli: 0, vms: 1 }],
    ['memory', { vcpus: 1, memoryMib: 65_537, gpuMilli: 0, vms: 1 }],
    ['gpus', { vcpus: 1, memoryMib: 1, gpuMilli: 3000, vms: 1 }],
    ['vms', { vcpus: 1, memoryMib: 1, gpuMilli: 0, vms: 4 }],
  ])('tryConsume refuses, changing nothing, when %s would exceed the default limit', async (_limit, amounts) => {
    const id = await db().uow.transaction((tx) => insertUser(tx));
    expect(await consume(id, ONE_VM)).toBe(true);
    expect(await consume(id, amounts as ResourceAmounts)).toBe(false);
    expect(await usage(id)).toEqual(ONE_VM);
  });

  it("per-user quota columns override the defaults, both down and up; a quota of 0 means 0, not 'default'", async () => {
    const tight = await db().uow.transaction((tx) => insertUser(tx, { quotaVms: 1 }));
    expect(await consume(tight, ONE_VM)).toBe(true);
    expect(await consume(tight, ONE_VM)).toBe(false); // the default would allow 3

    const generous = await db().uow.transaction((tx) => insertUser(tx, { quotaGpuMilli: 8000, quotaVcpus: 128 }));
    expect(await consume(generous, { vcpus: 100, memoryMib: 1024, gpuMilli: 8000, vms: 1 })).toBe(true);
    expect(await usage(generous)).toEqual({ vcpus: 100, memoryMib: 1024, gpuMilli: 8000, vms: 1 });

    const noGpus = await db().uow.transaction((tx) => insertUser(tx, { quotaGpuMilli: 0 }));
    expect(await consume(noGpus, ONE_VM)).toBe(false);
    expect(await consume(noGpus, { ...ONE_VM, gpuMilli: 0 })).toBe(true);

    // The quota of one user does not leak to another.
    const plain = await db().uow.transaction((tx) => insertUser(tx));
    expect(await consume(plain, { ...ONE_VM, vms: 3 })).toBe(true);
  });

  it('tryConsume of an unknown user changes nothing and returns false', async () => {
    expect(await consume(ids.next(), ONE_VM)).toBe(false);
  });

  it('release restores the usage, and the database refuses to release more than was used', async () => {
    const id = await db().uow.transaction((tx) => insertUser(tx, { quotaVms: 1 }));
    expect(await consume(id, ONE_VM)).toBe(true);
    expect(await consume(id, ONE_VM)).toBe(false);
    await release(id, ONE_VM);
    expect(await usage(id)).toEqual({ vcpus: 0, memoryMib: 0, gpuMilli: 0, vms: 0 });
    expect(await consume(id, ONE_VM)).toBe(true);

    await release(id, ONE_VM);
    const error = await errorOf(() => release(id, ONE_VM));
    expect(constraintViolation(error)).toEqual({ kind: 'check', target: 'ck_users_usage' });
    expect(await usage(id)).toEqual({ vcpus: 0, memoryMib: 0, gpuMilli: 0, vms: 0 });
  });

  it("tryConsume and release stamp updated_at with the clock's time, and leave created_at alone", async () => {
    const id = await db().uow.transaction((tx) => insertUser(tx));
    db().clock.set(at(1));
    await consume(id, ONE_VM);
    expect((await db().uow.read((tx) => users.findById(tx, id)))!.updatedAt).toEqual(at(1));
    db().clock.set(at(2));
    await release(id, ONE_VM);
    const user = await db().uow.read((tx) => users.findById(tx, id));
    expect(user!.updatedAt).toEqual(at(2));
    expect(user!.createdAt).toEqual(T0);
  });

  it('GPU usage counts milli-GPUs: fractions add up to the quota exactly and one milli-GPU more is refused', async () => {
    const id = await db().uow.transaction((tx) => insertUser(tx, { quotaGpuMilli: 1000 }));
    const fraction = (gpuMilli: number): ResourceAmounts => ({ vcpus: 1, memoryMib: 256, gpuMilli, vms: 0 });
    expect(await consume(id, fraction(429))).toBe(true); // a 3g of a 7-slice MIG GPU
    expect(await consume(id, fraction(429))).toBe(true);
    expect(await consume(id, fraction(143))).toBe(false); // a 1g: 1001 > 1000 (weights round up)
    expect(await consume(id, fraction(142))).toBe(true); // exactly 1000
    expect((await usage(id)).gpuMilli).toBe(1000);
    expect(await consume(id, fraction(1))).toBe(false);
    await release(id, fraction(429));
    expect(await consume(id, fraction(250))).toBe(true); // a 1/4 vGPU
    expect((await usage(id)).gpuMilli).toBe(429 + 142 + 250);
  });

  it('20 parallel tryConsume calls against a quota of 5 VMs: exactly 5 succeed and usage never overruns', async () => {
    // PostgreSQL: 20 pooled connections at once, the conditional UPDATE's row lock decides.
    // SQLite: the unit of work serialises them.
    const id = await db().uow.transaction((tx) => insertUser(tx, { quotaVms: 5 }));
    const results = await Promise.all(Array.from({ length: 20 }, () => consume(id, ONE_VM, { ...DEFAULTS, vcpus: 1000, memoryMib: 1e9, gpus: 100 })));
    expect(results.filter(Boolean)).toHaveLength(5);
    expect(await usage(id)).toEqual({ vcpus: 20, memoryMib: 40_960, gpuMilli: 5000, vms: 5 });
  });

  it('insert/findByUsername round-trip through TypeORM; a duplicate username is a unique violation', async () => {
    const user = userEntity({ username: 'ada', role: UserRole.Admin, quotaVcpus: 64, quotaGpuMilli: 4000, createdAt: at(7), updatedAt: at(8) });
    await db().uow.transaction((tx) => users.insert(tx, user));
    const found = await db().uow.read((tx) => users.findByUsername(tx, 'ada'));
    expect({ ...found }).toEqual({ ...user });
    // Without timestamps of its own, the user is stamped with the clock's time.
    db().clock.set(at(9));
    const stamped = userEntity();
    await db().uow.transaction((tx) => users.insert(tx, stamped));
    expect(await db().uow.read((tx) => users.findById(tx, stamped.id))).toMatchObject({ createdAt: at(9), updatedAt: at(9) });
    const duplicate = await errorOf(() => db().uow.transaction((tx) => users.insert(tx, Object.assign(new UserEntity(), { ...user, id: ids.next() }))));
    expect(constraintViolation(duplicate)?.kind).toBe('unique');
  });

  it('an admin quota change does not overwrite usage consumed in between', async () => {
    const id = await db().uow.transaction((tx) => insertUser(tx));
    const loaded = await db().uow.read((tx) => users.findById(tx, id)); // UsersService.setQuota reads the user first
    expect(await consume(id, ONE_VM)).toBe(true); // a VM is created meanwhile
    db().clock.set(at(3));
    expect(await db().uow.transaction((tx) => users.setQuota(tx, id, { vms: 10 }))).toBe(true);
    expect(loaded!.usedVms).toBe(0);
    expect(await usage(id)).toEqual(ONE_VM);
    const after = await db().uow.read((tx) => users.findById(tx, id));
    expect(after).toMatchObject({ quotaVms: 10, quotaGpuMilli: null, updatedAt: at(3) });
  });

  it('setQuota changes only the limits given, and null resets one to the default', async () => {
    const id = await db().uow.transaction((tx) => insertUser(tx, { quotaVms: 5, quotaGpuMilli: 2000 }));
    db().clock.set(at(4));
    await db().uow.transaction((tx) => users.setQuota(tx, id, { gpuMilli: 8000 }));
    expect(await db().uow.read((tx) => users.findById(tx, id))).toMatchObject({ quotaVms: 5, quotaGpuMilli: 8000, updatedAt: at(4) });
    db().clock.set(at(5));
    await db().uow.transaction((tx) => users.setQuota(tx, id, { vms: null }));
    expect(await db().uow.read((tx) => users.findById(tx, id))).toMatchObject({ quotaVms: null, quotaGpuMilli: 8000, updatedAt: at(5) });
    expect(await db().uow.transaction((tx) => users.setQuota(tx, ids.next(), { vms: 1 }))).toBe(false);
  });
});

reportSkippedPostgres('UsersRepository quota accounting');
