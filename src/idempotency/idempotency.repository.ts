import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { ConflictError, IdempotencyKeyReusedError, ValidationFailedError } from '../common/domain-errors';
import { IdGenerator } from '../common/id-generator';
import type { Tx } from '../database/unit-of-work';

export type KeyClaim =
  | { kind: 'new'; id: string }
  | { kind: 'seen'; vmId: string | null; operationId: string | null; responseStatus: number | null; responseBody: string | null };

interface KeyRow {
  id: string;
  request_hash: string;
  vm_id: string | null;
  operation_id: string | null;
  response_status: number | null;
  response_body: string | null;
  expires_at: unknown;
}

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
  constructor(private readonly ids: IdGenerator) {}

  async claim(tx: Tx, userId: string, key: string, requestHash: string, now: Date, ttlHours: number): Promise<KeyClaim> {
    const d = tx.dialect;
    const id = this.ids.next();
    const expires = new Date(now.getTime() + ttlHours * 3_600_000);
    const insert = () =>
      tx.run(
        `INSERT INTO idempotency_keys (id, user_id, key, request_hash, vm_id, operation_id, response_status, response_body, expires_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, NULL, NULL, NULL, NULL, $5, $6, $6) ON CONFLICT (user_id, key) DO NOTHING`,
        [id, userId, key, requestHash, d.ts(expires), d.ts(now)],
      );
    // Insert first; on conflict read the winner. An expired row is deleted and the insert retried, and
    // whoever's insert lands is the only one told 'new' (a concurrent twin sees its row instead).
    for (let attempt = 0; attempt < 3; attempt++) {
      if ((await insert()) === 1) return { kind: 'new', id };
      const row = await tx.one<KeyRow>(
        `SELECT id, request_hash, vm_id, operation_id, response_status, response_body, expires_at
         FROM idempotency_keys WHERE user_id = $1 AND key = $2`,
        [userId, key],
      );
      if (!row) continue;
      if (d.date(row.expires_at).getTime() <= now.getTime()) {
        await tx.run('DELETE FROM idempotency_keys WHERE id = $1', [row.id]);
        continue;
      }
      if (row.request_hash !== requestHash) throw new IdempotencyKeyReusedError();
      return {
        kind: 'seen',
        vmId: row.vm_id,
        operationId: row.operation_id,
        responseStatus: row.response_status,
        responseBody: row.response_body,
      };
    }
    throw new ConflictError('request_in_progress', 'A request with this Idempotency-Key is being processed; retry shortly');
  }

  async attach(tx: Tx, keyId: string, vmId: string, operationId: string): Promise<void> {
    await tx.run('UPDATE idempotency_keys SET vm_id = $2, operation_id = $3 WHERE id = $1', [keyId, vmId, operationId]);
  }

  /** Stores the response to replay; a no-op when the operation had no key. */
  async recordResponse(tx: Tx, operationId: string, status: number, body: unknown, now: Date): Promise<void> {
    await tx.run(
      'UPDATE idempotency_keys SET response_status = $2, response_body = $3, updated_at = $4 WHERE operation_id = $1',
      [operationId, status, JSON.stringify(body), tx.dialect.ts(now)],
    );
  }

  /** Drops the key, so a retry after a retryable failure (503) runs afresh. */
  async forget(tx: Tx, operationId: string): Promise<void> {
    await tx.run('DELETE FROM idempotency_keys WHERE operation_id = $1', [operationId]);
  }

  async purgeExpired(tx: Tx, now: Date): Promise<number> {
    return tx.run('DELETE FROM idempotency_keys WHERE expires_at < $1', [tx.dialect.ts(now)]);
  }
}
