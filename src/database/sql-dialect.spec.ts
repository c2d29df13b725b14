import { SqlDialect, constraintViolation } from './sql-dialect';

describe(SqlDialect.name, () => {
  it('turns $n into anonymous markers for SQLite, repeating parameters as used', () => {
    const sqlite = new SqlDialect('sqlite');
    expect(sqlite.bind('SELECT * FROM t WHERE a = $2 AND b = $1 AND c = $2', ['x', 'y'])).toEqual([
      'SELECT * FROM t WHERE a = ? AND b = ? AND c = ?',
      ['y', 'x', 'y'],
    ]);
  });

  it('leaves PostgreSQL SQL and parameters alone', () => {
    expect(new SqlDialect('postgres').bind('SELECT $1', [1])).toEqual(['SELECT $1', [1]]);
  });

  it('writes SQLite timestamps as TypeORM does and reads them back as UTC', () => {
    const sqlite = new SqlDialect('sqlite');
    const at = new Date('2026-11-26T23:26:55.123Z');
    expect(sqlite.ts(at)).toBe('2026-11-26 23:26:55.123');
    expect(sqlite.date('2026-11-26 23:26:55.123').toISOString()).toBe(at.toISOString());
    expect(new SqlDialect('postgres').ts(at)).toBe(at);
  });

  it('recognises constraint violations from both drivers', () => {
    expect(constraintViolation({ driverError: { code: '23505', constraint: 'uq_x' } })).toEqual({ kind: 'unique', target: 'uq_x' });
    expect(
      constraintViolation({ driverError: { code: 'SQLITE_CONSTRAINT_UNIQUE', message: 'UNIQUE constraint failed: vms.public_ip' } }),
    ).toEqual({ kind: 'unique', target: 'vms.public_ip' });
    expect(constraintViolation(new Error('x'))).toBeNull();
  });
});
