import { applyDecorators } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';
import { BODY_LIMIT_BYTES } from './body-parsers';
import { PROBLEM_TYPE_BASE, TITLES, statusForCode } from './problem-details';

const DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid request (validation_failed); the errors member names each field',
  401: 'Missing, invalid or expired token, or wrong credentials; see WWW-Authenticate',
  403: 'Not allowed (forbidden) or over quota (quota_exceeded)',
  404: 'No such resource, or it belongs to another user',
  409: 'Conflicts with the current state; the code says which',
  413: `Body larger than ${BODY_LIMIT_BYTES} bytes`,
  415: 'Body of a media type this operation does not take',
  422: 'Idempotency-Key reused with a different body (idempotency_key_reused), or no host could ever hold the request (unsatisfiable)',
  429: 'Too many attempts; see Retry-After',
  502: 'The hypervisor failed (hypervisor_error)',
  503: 'No capacity (insufficient_capacity) or hypervisor unavailable; see Retry-After',
};

/** Codes whose status means something else on most routes. */
const CODE_DESCRIPTIONS: Record<string, string> = {
  not_ready: 'Not ready (not_ready); the checks member says which dependency failed',
  invalid_credentials: 'Wrong username or password (invalid_credentials)',
};

/** The code a bare status stands for. */
const DEFAULT_CODE: Record<number, string> = {
  400: 'validation_failed',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not_found',
  409: 'invalid_state',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  422: 'idempotency_key_reused',
  429: 'too_many_login_attempts',
  502: 'hypervisor_error',
  503: 'insufficient_capacity',
};

/** What each code's problem says, with the extension members it carries. */
const EXAMPLES: Record<string, { detail: string; instance?: string } & Record<string, unknown>> = {
  validation_failed: {
    detail: 'Invalid request: cpu_cores must be an integer',
    errors: [{ field: 'cpu_cores', message: 'must be an integer' }],
  },
  unauthenticated: { detail: 'The access token has expired' },
  invalid_credentials: { detail: 'Incorrect username or password', instance: '/token' },
  forbidden: { detail: 'This operation requires the admin role' },
  quota_exceeded: { detail: 'Quota exceeded for gpus: 8 used + 1 requested > 8 allowed', limit: 'gpus', quota: 8, used: 8, requested: 1 },
  not_found: { detail: 'vm 019abcde-1234-7000-8000-0123456789ab not found', instance: '/vms/019abcde-1234-7000-8000-0123456789ab', resource: 'vm' },
  invalid_state: { detail: 'Cannot start a VM that is created and running; allowed now: delete, stop, reboot, shelve, update', current_status: 'created', power_state: 'running', allowed_actions: ['delete', 'stop', 'reboot', 'shelve', 'update'] },
  payload_too_large: { detail: `The request body is larger than the limit of ${BODY_LIMIT_BYTES} bytes`, limit_bytes: BODY_LIMIT_BYTES },
  unsupported_media_type: { detail: 'POST /vms takes application/json, not application/x-www-form-urlencoded', accepted: ['application/json'] },
  idempotency_key_reused: { detail: 'This Idempotency-Key was already used with a different request body' },
  too_many_login_attempts: { detail: 'Too many failed sign-ins for this username; try again in 300 s', instance: '/token' },
  too_many_requests: { detail: 'Too many sign-in attempts from this client; try again in 2 s', instance: '/token' },
  hypervisor_error: { detail: 'The hypervisor failed: InternalServerError', vm_id: '019abcde-1234-7000-8000-0123456789ab' },
  not_ready: { detail: 'Not ready: hypervisor: not authenticated: Invalid API key', instance: '/ready', checks: { database: 'ok', hypervisor: 'not authenticated: Invalid API key' } },
  unsatisfiable: {
    detail: 'No host could ever hold this request: no host has GPU model b200-192gb',
    field: 'gpu_model',
    reason: 'no host has GPU model b200-192gb',
    available: { gpu_models: ['a100-80gb', 'h100-80gb', 'l4-24gb', 'l40s-48gb'] },
  },
  public_ip_in_use: { detail: 'The public IP 192.168.1.1 is used by another live VM', field: 'public_ip' },
  gpu_exists: { detail: 'GPU(s) already registered: GPU-3b6c5a73-17c2-f319-c5b0-563912c55e13', instance: '/hosts', gpu_uuids: ['GPU-3b6c5a73-17c2-f319-c5b0-563912c55e13'] },
  request_in_progress: { detail: 'A request with this Idempotency-Key is being processed; retry shortly' },
  operation_in_progress: {
    detail: 'The VM is busy with a stop (operation 019abcde-5678-7000-8000-0123456789ab); try again when it finishes',
    instance: '/vms/019abcde-1234-7000-8000-0123456789ab/start',
    operation_id: '019abcde-5678-7000-8000-0123456789ab',
  },
  host_exists: { detail: 'A host named gpu-h100-02 is already registered', instance: '/hosts/019abcde-1234-7000-8000-0123456789ab', field: 'name' },
  host_removed: {
    detail: 'Host gpu-h100-01 was removed; it can no longer be changed',
    instance: '/hosts/019abcde-1234-7000-8000-0123456789ab',
    host_id: '019abcde-1234-7000-8000-0123456789ab',
  },
  host_has_vms: {
    detail: 'Host gpu-h100-01 still has 2 live and 1 shelved VM(s); delete or move them first',
    instance: '/hosts/019abcde-1234-7000-8000-0123456789ab',
    live_vms: 2,
    shelved_vms: 1,
  },
  username_taken: { detail: 'The username alice is taken', instance: '/users' },
  user_has_vms: { detail: 'User alice still has 2 VM(s); delete them first', instance: '/users/019abcde-1234-7000-8000-0123456789ab', live_vms: 2 },
  last_admin: { detail: 'This is the last admin who can sign in; make another admin first', instance: '/users/019abcde-1234-7000-8000-0123456789ab' },
  hypervisor_unavailable: { detail: 'The hypervisor is unavailable; try again later', vm_id: '019abcde-1234-7000-8000-0123456789ab' },
  insufficient_capacity: {
    detail: 'No host can take 32 vCPU / 262144 MiB / 500 GiB with 8× h100-80gb right now',
    vm_id: '019abcde-1234-7000-8000-0123456789ab',
    alternatives: [{ gpu_model: 'a100-80gb', gpu_count: 8, region: 'us-east-1' }],
  },
};

/** Examples of a code on routes where the default one would mislead: `code:variant`, e.g. not_found:host. */
const VARIANTS: Record<string, { detail: string; instance?: string } & Record<string, unknown>> = {
  'not_found:host': { detail: 'host 019abcde-1234-7000-8000-0123456789ab not found', instance: '/hosts/019abcde-1234-7000-8000-0123456789ab', resource: 'host' },
  'not_found:user': { detail: 'user 019abcde-1234-7000-8000-0123456789ab not found', instance: '/users/019abcde-1234-7000-8000-0123456789ab', resource: 'user' },
};

/** The code a `code:variant` item stands for. */
function baseCode(item: string): string {
  return item.split(':')[0];
}

/** The example problem body for a code (or a `code:variant`), as the server would send it. */
export function problemExample(item: string): Record<string, unknown> {
  const code = baseCode(item);
  const status = statusForCode(code);
  const { detail, instance = '/vms', ...extensions } = VARIANTS[item] ?? EXAMPLES[code] ?? { detail: TITLES[status] ?? 'Error' };
  return { type: `${PROBLEM_TYPE_BASE}${code}`, title: TITLES[status] ?? 'Error', status, detail, instance, code, request_id: 'req-3f2a9c', ...extensions };
}

/** Codes whose answer tells the client when to try again. */
const RETRY_CODES = new Set(['insufficient_capacity', 'hypervisor_unavailable', 'too_many_login_attempts', 'too_many_requests']);
const RETRY_AFTER = { 'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'integer', example: 30 } } };

/** The OpenAPI response for one status: the problem schema, and an example per code it can carry. */
export function problemResponse(status: number, codes: string[]) {
  return {
    status,
    description: (codes.length === 1 && CODE_DESCRIPTIONS[codes[0]]) || (DESCRIPTIONS[status] ?? 'Error'),
    ...(codes.some((code) => RETRY_CODES.has(baseCode(code))) ? { headers: RETRY_AFTER } : {}),
    content: {
      'application/problem+json': {
        schema: { $ref: '#/components/schemas/ProblemDetailsDto' },
        examples: Object.fromEntries(codes.map((code) => [baseCode(code), { summary: baseCode(code), value: problemExample(code) }])),
      },
    },
  };
}

/**
 * Documents RFC 9457 problem responses. Each item is a status (its usual
 * code) or a code (its status looked up), or `code:variant` for the code's
 * example on a route of its own (not_found:host); each response shows its own
 * examples, so a 429 of /token reads like a 429.
 */
export function ApiProblems(...items: (number | string)[]) {
  const codesByStatus = new Map<number, string[]>();
  for (const item of items) {
    const code = typeof item === 'number' ? DEFAULT_CODE[item] : item;
    const status = typeof item === 'number' ? item : statusForCode(baseCode(item));
    codesByStatus.set(status, [...(codesByStatus.get(status) ?? []), code]);
  }
  return applyDecorators(...[...codesByStatus].map(([status, codes]) => ApiResponse(problemResponse(status, codes))));
}
