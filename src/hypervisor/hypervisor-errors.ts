import {
  AuthenticationError,
  ClientException,
  DeviceBusyError,
  HostUnreachableError,
  InvalidVmSpecError,
  InvalidVmStateError,
  NoResourcesAvailableError,
  TransientHypervisorError,
  VmNotFoundError,
} from '@vmplane/sdk';

export type HypervisorErrorKind =
  | 'no_resources'
  | 'authentication'
  | 'device_busy'
  /** A host that does not answer: its VMs are unknown, not gone. */
  | 'host_unreachable'
  /** A verb other than delete on a VM the hypervisor does not have. */
  | 'vm_not_found'
  /** The VM's power state does not allow the verb (reboot while shut off, resize while running). */
  | 'invalid_state'
  /** A request the hypervisor can never accept (a bad image, key or device): retrying is pointless. */
  | 'invalid_spec'
  /** Worth retrying; says nothing about the VM. */
  | 'transient'
  | 'client'
  | 'unknown';

export interface ClassifiedError {
  kind: HypervisorErrorKind;
  message: string;
  /** For host_unreachable: the host that did not answer. */
  host?: string | null;
}

/**
 * Names whatever the SDK threw. The SDK's errors are matched by class; any
 * other value — including one that is not an Error at all — is 'unknown'.
 */
export function classifyHypervisorError(error: unknown): ClassifiedError {
  if (error instanceof NoResourcesAvailableError) return { kind: 'no_resources', message: error.message };
  if (error instanceof AuthenticationError) return { kind: 'authentication', message: error.message };
  if (error instanceof DeviceBusyError) return { kind: 'device_busy', message: error.message };
  if (error instanceof HostUnreachableError) return { kind: 'host_unreachable', message: error.message, host: error.host };
  if (error instanceof VmNotFoundError) return { kind: 'vm_not_found', message: error.message };
  if (error instanceof InvalidVmStateError) return { kind: 'invalid_state', message: error.message };
  if (error instanceof InvalidVmSpecError) return { kind: 'invalid_spec', message: error.message };
  if (error instanceof TransientHypervisorError) return { kind: 'transient', message: error.message };
  if (error instanceof ClientException) return { kind: 'client', message: error.message };
  if (error instanceof Error) return { kind: 'unknown', message: `${error.name}: ${error.message}` };
  return { kind: 'unknown', message: `non-Error value thrown: ${describe(error)}` };
}

/** The hypervisor calls whose failures the gateway may retry, and which kinds are worth it for each. */
export type HypervisorVerb = 'create' | 'delete' | 'start' | 'stop' | 'reboot' | 'shelve' | 'unshelve' | 'resize';

/**
 * Retrying is safe for every verb here: create and unshelve adopt a VM an
 * earlier attempt made (by its id), the power verbs are idempotent, delete of
 * a gone VM succeeds. It is useful only for failures that may pass.
 */
export function isRetryable(verb: HypervisorVerb, kind: HypervisorErrorKind): boolean {
  if (kind === 'transient' || kind === 'host_unreachable') return true;
  switch (verb) {
    case 'create':
    case 'unshelve':
    case 'resize':
      return kind === 'no_resources';
    case 'delete':
      return kind !== 'authentication' && kind !== 'invalid_spec';
    default:
      return false;
  }
}

function describe(value: unknown): string {
  try {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    return (text ?? String(value)).slice(0, 200);
  } catch {
    return String(value).slice(0, 200);
  }
}

/** An error that carries its classification and how many attempts were made. */
export class HypervisorCallError extends Error {
  /** The hypervisor's own words, for the log: they may name hosts, URIs, users and paths. */
  readonly detail: string;

  /** `message` is what a VM's owner may read (operations, status_reason, problem details): see publicMessage. */
  constructor(
    readonly classified: ClassifiedError,
    readonly attempts: number,
  ) {
    super(publicMessage(classified));
    this.name = 'HypervisorCallError';
    this.detail = classified.message;
  }
}

const URI = /\b[a-z][a-z0-9+.-]*:\/\/[^\s'"()<>,;]+/gi;
const USER_AT_HOST = /\b[\w.-]+@[\w.-]+/g;
const ADDRESS = /\b(?:\d{1,3}\.){3}\d{1,3}\b|\[[0-9a-f:]+\]/gi;
const ABSOLUTE_PATH = /(^|[\s'"=(:,])\/[^\s'"(),;:]*/g;

/**
 * A hypervisor failure as the VM's owner may read it. The owner sees what
 * went wrong, not the fleet behind it: connection URIs (with their user and
 * key file), user@host, addresses and absolute paths are replaced, and a host
 * that did not answer is not named (members never see host names). Operators
 * find the whole message in the log line of the failure.
 */
export function publicMessage(classified: ClassifiedError): string {
  const text = classified.message
    .replace(URI, '<uri>')
    .replace(USER_AT_HOST, '<user@host>')
    .replace(ADDRESS, '<address>')
    .replace(ABSOLUTE_PATH, '$1<path>');
  if (classified.kind !== 'host_unreachable') return text;
  return text.replace(/^Host .*? \(<uri>\) did not answer/, 'The hypervisor host did not answer');
}
