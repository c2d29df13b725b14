import { applyDecorators } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';

const DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid request (validation_failed); the errors member names each field',
  401: 'Missing, invalid or expired token, or wrong credentials',
  403: 'Not allowed (forbidden) or over quota (quota_exceeded)',
  404: 'No such resource, or it belongs to another user',
  409: 'Conflicts with the current state (e.g. invalid_state_transition, public_ip_in_use)',
  413: 'Body larger than 1 MiB',
  415: 'Unsupported Content-Type',
  422: 'Idempotency-Key reused with a different body',
  429: 'Too many failed sign-ins; see Retry-After',
  502: 'The hypervisor failed (hypervisor_error)',
  503: 'No capacity (insufficient_capacity) or hypervisor unavailable; see Retry-After',
};

/** Documents RFC 9457 problem responses for the given statuses. */
export function ApiProblems(...statuses: number[]) {
  return applyDecorators(
    ...statuses.map((status) =>
      ApiResponse({
        status,
        description: DESCRIPTIONS[status] ?? 'Error',
        content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/ProblemDetailsDto' } } },
      }),
    ),
  );
}
