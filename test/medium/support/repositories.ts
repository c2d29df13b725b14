import type { DataSource } from 'typeorm';
import { Clock } from '../../../src/common/clock';
import { IdGenerator, UuidV7Generator } from '../../../src/common/id-generator';
import { PreparedStatements } from '../../../src/database/prepared-statements';
import { FleetRepository } from '../../../src/fleet/fleet.repository';
import { GpuAllocationEntity } from '../../../src/fleet/gpu-allocation.entity';
import { GpuEntity } from '../../../src/fleet/gpu.entity';
import { GpuSlotClaimEntity } from '../../../src/fleet/gpu-slot-claim.entity';
import { HostEntity } from '../../../src/fleet/host.entity';
import { IdempotencyKeyEntity } from '../../../src/idempotency/idempotency-key.entity';
import { IdempotencyRepository } from '../../../src/idempotency/idempotency.repository';
import { OperationEntity } from '../../../src/operations/operation.entity';
import { OperationsRepository } from '../../../src/operations/operations.repository';
import { UserEntity } from '../../../src/users/user.entity';
import { UsersRepository } from '../../../src/users/users.repository';
import { VmLabelEntity } from '../../../src/vms/vm-label.entity';
import { VmEntity } from '../../../src/vms/vm.entity';
import { VmsRepository } from '../../../src/vms/vms.repository';

/** Every repository over the data source's real TypeORM repositories, as the modules' forFeature() would build them. */
export interface Repositories {
  vms: VmsRepository;
  fleet: FleetRepository;
  ops: OperationsRepository;
  users: UsersRepository;
  idempotency: IdempotencyRepository;
}

/** Every write is stamped with the test database's clock, as the server stamps with its Clock. */
export function repositoriesOf({ dataSource, clock }: { dataSource: DataSource; clock: Clock }, ids: IdGenerator = new UuidV7Generator()): Repositories {
  const repo = dataSource.getRepository.bind(dataSource);
  const statements = new PreparedStatements(clock);
  return {
    vms: new VmsRepository(repo(VmEntity), repo(VmLabelEntity), repo(GpuAllocationEntity), repo(GpuSlotClaimEntity), statements),
    fleet: new FleetRepository(repo(HostEntity), repo(GpuEntity), repo(GpuAllocationEntity), repo(GpuSlotClaimEntity), statements, clock),
    ops: new OperationsRepository(repo(OperationEntity), statements),
    users: new UsersRepository(repo(UserEntity), statements),
    idempotency: new IdempotencyRepository(repo(IdempotencyKeyEntity), ids),
  };
}
