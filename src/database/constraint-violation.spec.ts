import { constraintViolation } from './constraint-violation';

describe('constraintViolation', () => {
  it('recognises constraint violations from both drivers', () => {
    expect(constraintViolation({ driverError: { code: '23505', constraint: 'uq_x' } })).toEqual({ kind: 'unique', target: 'uq_x' });
    expect(
      constraintViolation({ driverError: { code: 'SQLITE_CONSTRAINT_UNIQUE', message: 'UNIQUE constraint failed: vms.public_ip' } }),
    ).toEqual({ kind: 'unique', target: 'vms.public_ip' });
    expect(constraintViolation({ driverError: { code: 'SQLITE_CONSTRAINT_CHECK', message: 'CHECK constraint failed: ck_hosts_capacity' } })).toEqual({
      kind: 'check',
      target: 'ck_hosts_capacity',
    });
    expect(constraintViolation(new Error('x'))).toBeNull();
  });
});
