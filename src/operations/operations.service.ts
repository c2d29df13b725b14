import { Injectable } from '@nestjs/common';
import type { AuthUser } from '../auth/auth-user';
import { isAdmin } from '../auth/auth-user';
import { decodeCursor, toPage } from '../common/cursor';
import { NotFoundError } from '../common/domain-errors';
import { UnitOfWork } from '../database/unit-of-work';
import { VmsRepository } from '../vms/vms.repository';
import { ListOperationsQueryDto, OperationPageDto, OperationResponseDto } from './dto/operation.dto';
import { OperationStatus } from './operation.entity';
import { toOperationResponse } from './operation.mapper';
import { OperationsRepository } from './operations.repository';

const DEFAULT_PAGE_SIZE = 50;

/** Reads the operation log. An operation belongs to its VM's owner; system cleanups are admin-only. */
@Injectable()
export class OperationsService {
  constructor(
    private readonly uow: UnitOfWork,
    private readonly ops: OperationsRepository,
    private readonly vms: VmsRepository,
  ) {}

  async get(user: AuthUser, id: string): Promise<OperationResponseDto> {
    const found = await this.uow.read(async (tx) => {
      const op = await this.ops.findById(tx, id);
      const visible = op && (isAdmin(user) || (op.vmId !== null && (await this.vms.ownerOf(tx, op.vmId)) === user.id)) ? op : null;
      const waiting = visible?.status === OperationStatus.WaitingForCapacity;
      return { op: visible, position: waiting ? (await this.ops.countWaitingBefore(tx, visible.queueKey!, visible.id)) + 1 : null };
    });
    if (!found.op) throw new NotFoundError('operation', id);
    return toOperationResponse(found.op, found.position);
  }

  async list(user: AuthUser, query: ListOperationsQueryDto): Promise<OperationPageDto> {
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    const before = decodeCursor(query.cursor);
    const rows = await this.uow.read(async (tx) => {
      if (query.vm_id) {
        const owner = await this.vms.ownerOf(tx, query.vm_id);
        if (!owner || (owner !== user.id && !isAdmin(user))) throw new NotFoundError('vm', query.vm_id);
        return this.ops.listByVm(tx, query.vm_id, before, limit + 1);
      }
      return this.ops.listByOwner(tx, isAdmin(user) ? null : user.id, before, limit + 1);
    });
    return toPage(rows, limit, (op) => toOperationResponse(op));
  }
}
