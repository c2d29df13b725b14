import { Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { UserRole } from '../common/user-role';
import { UnitOfWork, type Tx } from '../database/unit-of-work';
import { UsersRepository } from './users.repository';

/** Who a valid token's subject is right now: their role, and the token version their tokens must carry. */
export interface Principal {
  id: string;
  role: UserRole;
  tokenVersion: number;
}

/** How long a cached principal is trusted at most; a change reaches the cache sooner (invalidate, announce). */
const TTL_MS = 1000;
const MAX_ENTRIES = 10_000;
/** The channel on which replicas announce a changed user (PostgreSQL LISTEN/NOTIFY); the payload is the user id. */
export const PRINCIPALS_CHANNEL = 'vmplane_principals';

/**
 * The current state of token holders, read from their user rows and cached
 * for up to a second. Every authenticated request resolves its subject here,
 * so a role change, a password change, a disable or a delete takes effect on
 * existing tokens at once:
 * - in the process that made it: invalidate, after its commit;
 * - in every other replica: the change's transaction announces the user id
 *   (NOTIFY, delivered at commit) and each replica forgets its entry when it
 *   arrives; while a replica's listening connection is down, it caches
 *   nothing and reads the row on every request;
 * - for routes that need the admin role, on every replica: RoleGuard reads
 *   the row itself (fresh), so a demoted admin's token loses its power even
 *   before the announcement arrives.
 * Only subjects of signature-checked tokens get here, and the map is bounded.
 */
@Injectable()
export class Principals implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly cache = new Map<string, { principal: Principal | null; until: number }>();
  /** Whether changes made by other replicas reach this one (always on SQLite: one process). */
  private shared = false;
  /** Bumped by every forget: a read that raced a change is not cached. */
  private generation = 0;
  private stopListening: (() => void) | null = null;

  constructor(
    private readonly uow: UnitOfWork,
    private readonly users: UsersRepository,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.stopListening = await this.uow.listen(
      PRINCIPALS_CHANNEL,
      (id) => this.invalidate(id),
      (live) => {
        this.shared = live;
        this.forgetAll();
      },
    );
  }

  /** Before the connection pool closes: the listening connection is one of its own. */
  onModuleDestroy(): void {
    this.stopListening?.();
  }

  /** The user if they may act (exists, not disabled, not deleted), else null; `fresh` skips the cache. */
  async resolve(id: string, { fresh = false }: { fresh?: boolean } = {}): Promise<Principal | null> {
    const now = Date.now();
    const hit = fresh ? undefined : this.cache.get(id);
    if (hit && hit.until > now) return hit.principal;
    const generation = this.generation;
    const user = await this.uow.read((tx) => this.users.findById(tx, id));
    const principal = user && !user.disabledAt && !user.deletedAt ? { id: user.id, role: user.role, tokenVersion: user.tokenVersion } : null;
    if (this.shared && generation === this.generation) {
      this.cache.delete(id);
      this.cache.set(id, { principal, until: now + TTL_MS });
      if (this.cache.size > MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value as string);
    }
    return principal;
  }

  /** Within the transaction that changes a user's role, password, status or existence: tells every replica. */
  announce(tx: Tx, id: string): Promise<void> {
    return this.uow.notify(tx, PRINCIPALS_CHANNEL, id);
  }

  /** After the change commits, in this process. */
  invalidate(id: string): void {
    this.generation++;
    this.cache.delete(id);
  }

  private forgetAll(): void {
    this.generation++;
    this.cache.clear();
  }
}
