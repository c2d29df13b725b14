import { HttpException } from '@nestjs/common';
import { BODY_LIMIT_BYTES } from './body-parsers';
import { DomainError, FieldError } from './domain-errors';

/** Where each domain error code lands in HTTP. The only place that knows. */
const STATUS_BY_CODE: Record<string, number> = {
  validation_failed: 400,
  unauthenticated: 401,
  invalid_credentials: 401,
  forbidden: 403,
  quota_exceeded: 403,
  not_found: 404,
  invalid_state: 409,
  operation_in_progress: 409,
  resize_does_not_fit: 409,
  public_ip_in_use: 409,
  username_taken: 409,
  host_exists: 409,
  host_has_vms: 409,
  host_removed: 409,
  gpu_exists: 409,
  gpu_busy: 409,
  image_exists: 409,
  ssh_key_exists: 409,
  too_many_ssh_keys: 409,
  request_in_progress: 409,
  operation_superseded: 409,
  user_has_vms: 409,
  last_admin: 409,
  unsupported_media_type: 415,
  payload_too_large: 413,
  method_not_allowed: 405,
  idempotency_key_reused: 422,
  unsatisfiable: 422,
  too_many_login_attempts: 429,
  too_many_requests: 429,
  hypervisor_error: 502,
  insufficient_capacity: 503,
  hypervisor_unavailable: 503,
  not_ready: 503,
};

export const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

/** 5xx answers that report a known condition rather than a fault in this server. */
const EXPECTED_5XX = new Set(['insufficient_capacity', 'hypervisor_unavailable', 'not_ready']);

export const PROBLEM_TYPE_BASE = 'https://vmplane.dev/problems/';

export interface Problem {
  status: number;
  body: Record<string, unknown>;
  headers: Record<string, string>;
  /** True for faults worth an error log line (5xx that are not expected capacity answers). */
  isFault: boolean;
}

export function statusForCode(code: string): number {
  return STATUS_BY_CODE[code] ?? 500;
}

/** Turns anything thrown while serving a request into an RFC 9457 problem. Never includes a stack. */
export function toProblem(error: unknown, instance: string, requestId?: string): Problem {
  let status: number;
  let code: string;
  let detail: string;
  let extensions: Record<string, unknown> = {};
  const headers: Record<string, string> = {};

  if (error instanceof DomainError) {
    status = statusForCode(error.code);
    code = error.code;
    detail = error.message;
    extensions = error.extensions;
    Object.assign(headers, error.headers);
    if (error.retryAfterSeconds !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(error.retryAfterSeconds)));
  } else if (error instanceof HttpException) {
    status = error.getStatus();
    code = codeForHttpStatus(status);
    detail = httpExceptionDetail(error);
    // A 400 from the framework is a body it could not parse.
    if (status === 400) extensions = { errors: [{ field: 'body', message: detail } satisfies FieldError] };
  } else if (isFrameworkClientError(error)) {
    status = error.statusCode;
    code = frameworkCode(error);
    detail = error.message;
    if (code === 'validation_failed') extensions = { errors: [{ field: 'body', message: error.message } satisfies FieldError] };
  } else {
    status = 500;
    code = 'internal_error';
    detail = 'An unexpected error occurred; it has been logged with this request id';
  }

  if (code === 'payload_too_large') {
    detail = `The request body is larger than the limit of ${BODY_LIMIT_BYTES} bytes`;
    extensions = { limit_bytes: BODY_LIMIT_BYTES };
  }

  const body: Record<string, unknown> = {
    type: `${PROBLEM_TYPE_BASE}${code}`,
    title: TITLES[status] ?? 'Error',
    status,
    detail,
    instance,
    code,
    ...(requestId ? { request_id: requestId } : {}),
    ...extensions,
  };
  return { status, body, headers, isFault: status >= 500 && !EXPECTED_5XX.has(code) };
}

function codeForHttpStatus(status: number): string {
  switch (status) {
    case 404:
      return 'not_found';
    case 405:
      return 'method_not_allowed';
    case 413:
      return 'payload_too_large';
    case 415:
      return 'unsupported_media_type';
    case 400:
      return 'validation_failed';
    default:
      return status >= 500 ? 'internal_error' : 'http_error';
  }
}

function httpExceptionDetail(error: HttpException): string {
  const response = error.getResponse();
  if (typeof response === 'string') return response;
  const message = (response as { message?: unknown }).message;
  if (Array.isArray(message)) return message.join('; ');
  return typeof message === 'string' ? message : error.message;
}

interface FrameworkClientError {
  statusCode: number;
  code?: string;
  message: string;
}

/** Errors Fastify raises before a route runs (body too large, bad JSON, wrong content type). */
function isFrameworkClientError(error: unknown): error is FrameworkClientError {
  const statusCode = (error as { statusCode?: unknown })?.statusCode;
  return typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500;
}

function frameworkCode(error: FrameworkClientError): string {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'payload_too_large';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return error.statusCode === 415 ? 'unsupported_media_type' : 'bad_request';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'validation_failed';
    default:
      if (error instanceof SyntaxError || /JSON/i.test(error.message)) return 'validation_failed';
      return codeForHttpStatus(error.statusCode);
  }
}
