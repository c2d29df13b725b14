import {
  ConflictError,
  DomainError,
  HypervisorFaultError,
  HypervisorUnavailableError,
  InsufficientCapacityError,
} from '../common/domain-errors';
import type { HypervisorErrorKind } from '../hypervisor/hypervisor-errors';
import { VmResponseDto } from './dto/vm-response.dto';
import type { VmEntity } from './vm.entity';

/** Seconds a client is told to wait after a capacity refusal. */
export const CAPACITY_RETRY_AFTER_SECONDS = 30;

/** What a VM request answers: finished (200/201) or still running (202). */
export type VmOutcome =
  | { kind: 'done'; status: 200 | 201; vm: VmResponseDto; replayed: boolean }
  | { kind: 'accepted'; vm: VmResponseDto; operationId: string; asyncRequested: boolean; replayed: boolean; queuePosition?: number };

/** What a finished operation means for the request waiting on it. */
export type OperationResult =
  | { kind: 'succeeded'; status: 200 | 201; vm: VmEntity }
  | { kind: 'failed'; error: DomainError }
  | { kind: 'fault'; error: unknown };

/** The error code an operation records for a hypervisor failure. */
export function errorCodeFor(kind: HypervisorErrorKind): string {
  switch (kind) {
    case 'no_resources':
      return 'insufficient_capacity';
    // Not now: the hypervisor could not be reached or asked to be asked again, so nothing happened there.
    case 'authentication':
    case 'host_unreachable':
    case 'transient':
      return 'hypervisor_unavailable';
    default:
      return 'hypervisor_error';
  }
}

/** Rebuilds the domain error of a failed operation, e.g. for a waiting duplicate request. */
export function errorFromOperation(code: string | null, message: string | null, vmId: string | null): DomainError {
  const text = message ?? 'The operation failed';
  switch (code) {
    case 'insufficient_capacity':
      return new InsufficientCapacityError(text, [], CAPACITY_RETRY_AFTER_SECONDS, vmId ?? undefined);
    case 'hypervisor_unavailable':
      return new HypervisorUnavailableError(text, vmId ?? undefined);
    case 'operation_superseded':
      return new ConflictError('operation_superseded', text);
    default:
      return new HypervisorFaultError(text, vmId ?? undefined);
  }
}
