/**
 * Errors raised by services. Each has a stable machine-readable `code`; the
 * HTTP mapping lives in one place (ProblemDetailsFilter). `extensions` are
 * extra members of the RFC 9457 problem body.
 */
export abstract class DomainError extends Error {
  abstract readonly code: string;
  readonly extensions: Record<string, unknown> = {};
  /** Seconds a client should wait before retrying, when that is known. */
  retryAfterSeconds?: number;
  /** Response headers the answer needs (Allow for a 405, say). */
  readonly headers: Record<string, string> = {};

  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export interface FieldError {
  field: string;
  message: string;
}

/** A problem body lists at most this many field errors and counts the rest. */
export const MAX_REPORTED_ERRORS = 10;

export class ValidationFailedError extends DomainError {
  readonly code = 'validation_failed';
  readonly errors: FieldError[];
  constructor(errors: FieldError[]) {
    const shown = errors.slice(0, MAX_REPORTED_ERRORS);
    const more = errors.length - shown.length;
    super(`Invalid request: ${shown.map((e) => `${e.field} ${e.message}`).join('; ')}${more > 0 ? `; and ${more} more` : ''}`);
    this.errors = shown;
    this.extensions.errors = shown;
    if (more > 0) this.extensions.more_errors = more;
  }
}

export class UnauthenticatedError extends DomainError {
  readonly code = 'unauthenticated';
}

export class InvalidCredentialsError extends DomainError {
  readonly code = 'invalid_credentials';
  constructor() {
    super('Incorrect username or password');
  }
}

export class TooManyLoginAttemptsError extends DomainError {
  readonly code = 'too_many_login_attempts';
  constructor(retryAfterSeconds: number) {
    super(`Too many failed sign-ins for this username; try again in ${retryAfterSeconds} s`);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export class TooManyRequestsError extends DomainError {
  readonly code = 'too_many_requests';
  constructor(retryAfterSeconds: number) {
    super(`Too many sign-in attempts from this client; try again in ${retryAfterSeconds} s`);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export class ForbiddenError extends DomainError {
  readonly code = 'forbidden';
}

export class NotFoundError extends DomainError {
  readonly code = 'not_found';
  constructor(resource: string, id: string) {
    super(`${resource} ${id} not found`);
    this.extensions.resource = resource;
  }
}

export class ConflictError extends DomainError {
  constructor(
    readonly code: string,
    message: string,
    extensions: Record<string, unknown> = {},
  ) {
    super(message);
    Object.assign(this.extensions, extensions);
  }
}

/** The VM is not in a state the action may start from: names the state and the actions it allows now. */
export class InvalidStateError extends ConflictError {
  constructor(action: string, status: string, power: string, allowed: string[]) {
    const state = status === 'created' ? `${status} and ${power.replace('_', ' ')}` : status;
    super('invalid_state', `Cannot ${action} a VM that is ${state}; allowed now: ${allowed.length > 0 ? allowed.join(', ') : 'nothing'}`, {
      current_status: status,
      power_state: power,
      allowed_actions: allowed,
    });
  }
}

export class QuotaExceededError extends DomainError {
  readonly code = 'quota_exceeded';
  constructor(limit: string, quota: number, used: number, requested: number) {
    super(`Quota exceeded for ${limit}: ${used} used + ${requested} requested > ${quota} allowed`);
    Object.assign(this.extensions, { limit, quota, used, requested });
  }

  /** The GPU quota, which counts milli-GPUs: the message states them; quota, used and requested are also in GPUs. */
  static gpus(quotaMilli: number, usedMilli: number, requestedMilli: number): QuotaExceededError {
    const error = new QuotaExceededError('gpus', quotaMilli / 1000, usedMilli / 1000, requestedMilli / 1000);
    error.message = `Quota exceeded for gpus: ${usedMilli} milli-GPUs used + ${requestedMilli} requested > ${quotaMilli} allowed (1000 milli-GPUs = 1 GPU)`;
    Object.assign(error.extensions, { quota_milli: quotaMilli, used_milli: usedMilli, requested_milli: requestedMilli });
    return error;
  }
}

export interface CapacityAlternative {
  gpu_model: string | null;
  gpu_count: number;
  /** A fractional alternative: this profile (gpu_count is then 0). */
  gpu_profile?: string;
  region: string;
}

export class InsufficientCapacityError extends DomainError {
  readonly code = 'insufficient_capacity';
  constructor(message: string, alternatives: CapacityAlternative[], retryAfterSeconds: number, vmId?: string) {
    super(message);
    this.retryAfterSeconds = retryAfterSeconds;
    this.extensions.alternatives = alternatives;
    if (vmId) this.extensions.vm_id = vmId;
  }
}

/** No host of the fleet could ever hold the request, not even empty: retrying cannot help (unlike insufficient_capacity). */
export class UnsatisfiableError extends DomainError {
  readonly code = 'unsatisfiable';
  constructor(field: string, reason: string, available: Record<string, unknown>) {
    super(`No host could ever hold this request: ${reason}`);
    Object.assign(this.extensions, { field, reason, available });
  }
}

export class HypervisorUnavailableError extends DomainError {
  readonly code = 'hypervisor_unavailable';
  constructor(message: string, vmId?: string) {
    super(message);
    this.retryAfterSeconds = 30;
    if (vmId) this.extensions.vm_id = vmId;
  }
}

export class HypervisorFaultError extends DomainError {
  readonly code = 'hypervisor_error';
  constructor(message: string, vmId?: string) {
    super(message);
    if (vmId) this.extensions.vm_id = vmId;
  }
}

export class IdempotencyKeyReusedError extends DomainError {
  readonly code = 'idempotency_key_reused';
  constructor() {
    super('This Idempotency-Key was already used with a different request body');
  }
}

export class UnprocessableError extends DomainError {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class UnsupportedMediaTypeError extends DomainError {
  readonly code = 'unsupported_media_type';
  constructor(route: string, received: string, accepted: string[]) {
    super(`${route} takes ${accepted.join(' or ')}, not ${received}`);
    this.extensions.accepted = accepted;
  }
}

export class MethodNotAllowedError extends DomainError {
  readonly code = 'method_not_allowed';
  constructor(method: string, path: string, allowed: string[]) {
    super(`${path} does not take ${method}; it takes ${allowed.join(', ')}`);
    this.extensions.allowed = allowed;
    this.headers.allow = allowed.join(', ');
  }
}
