import { InvalidTransitionError } from '../common/domain-errors';
import { VmStatus } from './vm.entity';

/**
 * Every legal VM status change, in one place.
 * - created → failed: the reconciler found the VM missing from the hypervisor.
 * - failed → deleting: a failed delete may have left the VM on the hypervisor; delete again.
 * - failed → deleted: nothing is left on the hypervisor, so deletion is only a record change.
 */
const TRANSITIONS: Readonly<Record<VmStatus, readonly VmStatus[]>> = {
  [VmStatus.Provisioning]: [VmStatus.Created, VmStatus.Failed],
  [VmStatus.Created]: [VmStatus.Deleting, VmStatus.Failed],
  [VmStatus.Deleting]: [VmStatus.Deleted, VmStatus.Failed],
  [VmStatus.Failed]: [VmStatus.Deleting, VmStatus.Deleted],
  [VmStatus.Deleted]: [],
};

export function canTransition(from: VmStatus, to: VmStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** Throws InvalidTransitionError (409) unless `from → to` is legal. */
export function assertTransition(from: VmStatus, to: VmStatus, action: string): void {
  if (!canTransition(from, to)) throw new InvalidTransitionError(from, to, action);
}

/** The statuses a VM may be in when it moves to `to`. */
export function sourcesOf(to: VmStatus): VmStatus[] {
  return (Object.keys(TRANSITIONS) as VmStatus[]).filter((from) => TRANSITIONS[from].includes(to));
}
