import { Injectable } from '@nestjs/common';
import { UserRole } from '../common/user-role';
import { UnitOfWork } from '../database/unit-of-work';
import { UsersRepository } from './users.repository';

/** Who a valid token's subject is right now: their role, and the token version their tokens must carry. */
export interface Principal {
  id: string;
  role: UserRole;
  tokenVersion: number;
}

/** How long a replica trusts what it read; a change made in this process takes effect at once. */
const TTL_MS = 1000;
const MAX_ENTRIES = 10_000;

/**
 * The current state of token holders, read from their user rows and kept for
 * a second. Every authenticated request resolves its subject here, so a role
 * change, a password change, a disable or a delete takes effect on existing
 * tokens at once in this process (it invalidates the entry) and within a
 * second on other replicas. Only subjects of signature-checked tokens get
 * here, and the map is bounded.
 */
@Injectable()
export class Principals {
  private readonly cache = new Map<string, { principal: Principal | null; until: number }>();

  constructor(
    private readonly uow: UnitOfWork,
    private readonly users: UsersRepository,
  ) {}

  /** The user if they may act (exists, not disabled, not deleted), else null. */
  async resolve(id: string): Promise<Principal | null> {
    const now = Date.now();
    const hit = this.cache.get(id);
    if (hit && hit.until > now) return hit.principal;
    const user = await this.uow.read((tx) => this.users.findById(tx, id));
    const principal = user && !user.disabledAt && !user.deletedAt ? { id: user.id, role: user.role, tokenVersion: user.tokenVersion } : null;
    this.cache.delete(id);
    this.cache.set(id, { principal, until: now + TTL_MS });
    if (this.cache.size > MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value as string);
    return principal;
  }

  invalidate(id: string): void {
    this.cache.delete(id);
  }
}
