import { NotFoundException, PayloadTooLargeException } from '@nestjs/common';
import { InsufficientCapacityError, QuotaExceededError, ValidationFailedError } from './domain-errors';
import { toProblem } from './problem-details';

describe('toProblem', () => {
  it('maps a domain error by its code, with its extension members', () => {
    const problem = toProblem(new QuotaExceededError('gpus', 8, 8, 1), '/vms', 'r1');
    expect(problem.status).toBe(403);
    expect(problem.body).toEqual({
      type: 'https://vmplane.dev/problems/quota_exceeded',
      title: 'Forbidden',
      status: 403,
      detail: 'Quota exceeded for gpus: 8 used + 1 requested > 8 allowed',
      instance: '/vms',
      code: 'quota_exceeded',
      request_id: 'r1',
      limit: 'gpus',
      quota: 8,
      used: 8,
      requested: 1,
    });
  });

  it('sets Retry-After for capacity refusals and does not count them as faults', () => {
    const problem = toProblem(new InsufficientCapacityError('full', [], 30), '/vms');
    expect(problem).toMatchObject({ status: 503, headers: { 'retry-after': '30' }, isFault: false });
  });

  it('lists the offending fields of a validation failure', () => {
    const problem = toProblem(new ValidationFailedError([{ field: 'name', message: 'is required' }]), '/vms');
    expect(problem.status).toBe(400);
    expect(problem.body.errors).toEqual([{ field: 'name', message: 'is required' }]);
  });

  it('maps framework errors and never exposes an unexpected error', () => {
    expect(toProblem(new NotFoundException('Cannot GET /x'), '/x').body).toMatchObject({ status: 404, code: 'not_found' });
    expect(toProblem(new PayloadTooLargeException(), '/vms').body).toMatchObject({
      status: 413,
      code: 'payload_too_large',
      detail: 'The request body is larger than the limit of 1048576 bytes',
      limit_bytes: 1048576,
    });
    const bodyTooLarge = Object.assign(new Error('Request body is too large'), { statusCode: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE' });
    expect(toProblem(bodyTooLarge, '/vms').body).toMatchObject({ status: 413, code: 'payload_too_large' });
    const secret = new Error('connection to 10.0.0.5 failed: password=hunter2');
    const problem = toProblem(secret, '/vms');
    expect(problem).toMatchObject({ status: 500, isFault: true });
    expect(JSON.stringify(problem.body)).not.toContain('hunter2');
    expect(JSON.stringify(problem.body)).not.toContain('at ');
  });
});
