export interface ConstraintViolation {
  kind: 'unique' | 'check' | 'foreign_key';
  /** The constraint or index name (PostgreSQL) or the columns (SQLite's message). */
  target: string;
}

/** Classifies the driver error inside TypeORM's QueryFailedError as a constraint violation, or returns null. */
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
