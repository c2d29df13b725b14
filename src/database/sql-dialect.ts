import { isoTime, parseSqlUtc } from '../common/iso-time';

/**
 * The few differences between SQLite and PostgreSQL that hand-written SQL has
 * to care about. SQL is written once with $1-style placeholders.
 */
export class SqlDialect {
  private readonly converted = new Map<string, { text: string; order: number[] }>();
  private lastTsMs = Number.NaN;
  private lastTs = '';

  constructor(readonly kind: 'sqlite' | 'postgres') {}

  get isPostgres(): boolean {
    return this.kind === 'postgres';
  }

  /**
   * PostgreSQL takes $1…. better-sqlite3 binds a parameter array only to
   * anonymous `?` markers, so for SQLite each $n becomes `?` and the
   * parameters are re-ordered (and repeated) to match. Conversions are cached.
   */
  bind(text: string, params: readonly unknown[]): [string, unknown[]] {
    if (this.kind === 'postgres') return [text, params as unknown[]];
    let converted = this.converted.get(text);
    if (converted === undefined) {
      const order: number[] = [];
      const out = text.replace(/\$(\d+)/g, (_, n: string) => {
        order.push(Number(n) - 1);
        return '?';
      });
      converted = { text: out, order };
      this.converted.set(text, converted);
    }
    return [converted.text, converted.order.map((i) => params[i])];
  }

  /** A timestamp as a query parameter: a Date for PostgreSQL, TypeORM's UTC datetime text for SQLite. */
  ts(date: Date): Date | string {
    if (this.kind === 'postgres') return date;
    // A request formats the same instant several times (created_at, updated_at, lease…): keep the last one.
    const ms = date.getTime();
    if (ms !== this.lastTsMs) {
      const iso = isoTime(date);
      this.lastTs = `${iso.slice(0, 10)} ${iso.slice(11, 23)}`;
      this.lastTsMs = ms;
    }
    return this.lastTs;
  }

  tsOrNull(date: Date | null | undefined): Date | string | null {
    return date ? this.ts(date) : null;
  }

  /** Reads a timestamp column from a raw row. */
  date(value: unknown): Date {
    if (value instanceof Date) return value;
    if (typeof value === 'string') return parseSqlUtc(value) ?? new Date(value);
    throw new TypeError(`Not a timestamp: ${String(value)}`);
  }

  dateOrNull(value: unknown): Date | null {
    return value === null || value === undefined ? null : this.date(value);
  }

  /** Row locking for work queues; SQLite has one writer, so it needs none. */
  get forUpdateSkipLocked(): string {
    return this.kind === 'postgres' ? 'FOR UPDATE SKIP LOCKED' : '';
  }
}

/** `$from, $from+1, …` for `count` values, as in `IN (…)` lists. */
export function placeholders(count: number, from = 1): string {
  return Array.from({ length: count }, (_, i) => `$${i + from}`).join(', ');
}

export interface ConstraintViolation {
  kind: 'unique' | 'check' | 'foreign_key';
  /** The constraint or index name (PostgreSQL) or the columns (SQLite's message). */
  target: string;
}

/** Classifies a driver error as a constraint violation, or returns null. */
export function constraintViolation(error: unknown): ConstraintViolation | null {
  const driverError = (error as { driverError?: { code?: string; constraint?: string; message?: string } })?.driverError;
  if (!driverError) return null;
  const code = driverError.code ?? '';
  const message = driverError.message ?? '';
  if (code === '23505') return { kind: 'unique', target: driverError.constraint ?? '' };
  if (code === '23514') return { kind: 'check', target: driverError.constraint ?? '' };
  if (code === '23503') return { kind: 'foreign_key', target: driverError.constraint ?? '' };
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    return { kind: 'unique', target: message.replace(/^UNIQUE constraint failed: /, '') };
  }
  if (code === 'SQLITE_CONSTRAINT_CHECK') return { kind: 'check', target: message.replace(/^CHECK constraint failed: /, '') };
  // ON DELETE RESTRICT violations come back from SQLite as a trigger constraint.
  if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY' || (code === 'SQLITE_CONSTRAINT_TRIGGER' && /FOREIGN KEY/.test(message))) {
    return { kind: 'foreign_key', target: message };
  }
  return null;
}
