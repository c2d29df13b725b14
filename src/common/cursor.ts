import { ValidationFailedError } from './domain-errors';
import { UUID_PATTERN } from './id-generator';

/** Opaque keyset cursors: the id of the last item of a page. */
export function encodeCursor(lastId: string): string {
  return Buffer.from(JSON.stringify({ before: lastId })).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): string | null {
  if (!cursor) return null;
  try {
    const before = (JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { before?: unknown }).before;
    if (typeof before === 'string' && UUID_PATTERN.test(before)) return before;
  } catch {
    /* fall through */
  }
  throw new ValidationFailedError([{ field: 'cursor', message: 'is not a cursor this API issued' }]);
}

/** Builds a page from limit+1 fetched rows. */
export function toPage<T extends { id: string }, R>(rows: T[], limit: number, map: (row: T) => R): { items: R[]; next_cursor: string | null } {
  const hasMore = rows.length > limit;
  const pageRows = hasMore ? rows.slice(0, limit) : rows;
  return { items: pageRows.map(map), next_cursor: hasMore ? encodeCursor(pageRows[pageRows.length - 1].id) : null };
}
