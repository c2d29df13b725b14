import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { LessThan, Repository } from 'typeorm';
import { ConflictError, IdempotencyKeyReusedError, ValidationFailedError } from '../common/domain-errors';
import { IdGenerator } from '../common/id-generator';
import { on } from '../database/repository-on';
import type { Tx } from '../database/unit-of-work';
import { IdempotencyKeyEntity } from './idempotency-key.entity';

export type KeyClaim =
  | { kind: 'new'; id: string }
  | { kind: 'seen'; vmId: string | null; operationId: string | null; responseStatus: number | null; responseBody: string | null };

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** Validates an Idempotency-Key header value (draft-ietf-httpapi-idempotency-key-header). */
export function checkIdempotencyKey(key: string | undefined): string | null {
  if (key === undefined) return null;
  const value = key.replace(/^"(.*)"$/, '$1');
  if (!KEY_PATTERN.test(value)) {
    throw new ValidationFailedError([{ field: 'Idempotency-Key', message: 'must be 1–255 printable ASCII characters' }]);
  }
  return value;
}

/** A stable fingerprint of a request body: keys sorted, so property order does not matter. */
export function fingerprint(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/**
 * Idempotency keys, scoped per user. The key row is written in the same
 * transaction as the VM it creates; a concurrent duplicate waits on the
 * unique constraint and then sees the first request's row.
 */
@Injectable()
export class IdempotencyRepository {
  constructor(
    @InjectRepository(IdempotencyKeyEntity) private readonly keys: Repository<IdempotencyKeyEntity>,
    private readonly ids: IdGenerator,
  ) {}

  /**
   * Inserts the key unless the user already has it (INSERT … ON CONFLICT DO
   * NOTHING), then reads whoever holds it: only the request whose row landed
   * is told 'new'. An expired row is deleted and the claim retried.
   */
  async claim(tx: Tx, userId: string, key: string, requestHash: string, now: Date, ttlHours: number): Promise<KeyClaim> {
    const repo = on(this.keys, tx);
    const id = this.ids.next();
    const expiresAt = new Date(now.getTime() + ttlHours * 3_600_000);
    for (let attempt = 0; attempt < 3; attempt++) {
      await repo
        .createQueryBuilder()
        .insert()
        // Stamped with the same instant the expiry is counted from, so a key lives exactly its TTL.
        .values({ id, userId, key, requestHash, vmId: null, operationId: null, responseStatus: null, responseBody: null, expiresAt, createdAt: now, updatedAt: now })
        .orIgnore()
        .updateEntity(false)
        .execute();
      const row = await repo.findOneBy({ userId, key });
      if (!row) continue;
      if (row.id === id) return { kind: 'new', id };
      if (row.expiresAt.getTime() <= now.getTime()) {
        await repo.delete({ id: row.id });
        continue;
      }
      if (row.requestHash !== requestHash) throw new IdempotencyKeyReusedError();
      return {
        kind: 'seen',
        vmId: row.vmId,
        operationId: row.operationId,
        responseStatus: row.responseStatus,
        responseBody: row.responseBody,
      };
    }
    throw new ConflictError('request_in_progress', 'A request with this Idempotency-Key is being processed; retry shortly');
  }

  async attach(tx: Tx, keyId: string, vmId: string, operationId: string): Promise<void> {
    await on(this.keys, tx).update({ id: keyId }, { vmId, operationId });
  }

  /** Stores the response to replay; a no-op when the operation had no key. */
  async recordResponse(tx: Tx, operationId: string, status: number, body: unknown): Promise<void> {
    await on(this.keys, tx).update({ operationId }, { responseStatus: status, responseBody: JSON.stringify(body) });
  }

  /** Drops the key, so a retry after a retryable failure (503) runs afresh. */
  async forget(tx: Tx, operationId: string): Promise<void> {
    await on(this.keys, tx).delete({ operationId });
  }

  async purgeExpired(tx: Tx, now: Date): Promise<number> {
    const result = await on(this.keys, tx).delete({ expiresAt: LessThan(now) });
    return result.affected ?? 0;
  }
}
