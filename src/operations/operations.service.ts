import { Injectable } from '@nestjs/common';
import type { AuthUser } from '../auth/auth-user';
import { isAdmin } from '../auth/auth-user';
import { decodeCursor, toPage } from '../common/cursor';
import { NotFoundError } from '../common/domain-errors';
import { UnitOfWork } from '../database/unit-of-work';
import { VmsRepository } from '../vms/vms.repository';
import { ListOperationsQueryDto, OperationPageDto, OperationResponseDto } from './dto/operation.dto';
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
    const op = await this.uow.read(async (tx) => {
      const found = await this.ops.findById(tx, id);
      if (!found || isAdmin(user)) return found;
      if (!found.vmId) return null;
      return (await this.vms.ownerOf(tx, found.vmId)) === user.id ? found : null;
    });
    if (!op) throw new NotFoundError('operation', id);
    return toOperationResponse(op);
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
    return toPage(rows, limit, toOperationResponse);
  }
}
