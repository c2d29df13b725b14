import { InvalidTransitionError } from '../common/domain-errors';
import { VmStatus } from './vm.entity';

/** Every way a VM's status may change. */
export enum VmEvent {
  /** The hypervisor made the VM. */
  Provisioned = 'provisioned',
  /** Creating it failed for good; its resources are given back. */
  ProvisionFailed = 'provision_failed',
  /** A user asked for it to go. A failed delete may have left the VM on the hypervisor, so a failed VM may be deleted again. */
  DeleteRequested = 'delete_requested',
  Deleted = 'deleted',
  /** The delete failed; the VM may still be on the hypervisor and keeps its resources. */
  DeleteFailed = 'delete_failed',
  /** The reconciler found a created VM missing from the hypervisor. */
  FoundMissing = 'found_missing',
  /** A failed VM that holds nothing on the hypervisor: deleting it is only a record change. */
  RecordDeleted = 'record_deleted',
}

interface Transition {
  readonly from: readonly VmStatus[];
  readonly to: VmStatus;
}

/** Every legal VM status change, in one place. Repositories derive their guards from this table. */
const TRANSITIONS: Readonly<Record<VmEvent, Transition>> = {
  [VmEvent.Provisioned]: { from: [VmStatus.Provisioning], to: VmStatus.Created },
  [VmEvent.ProvisionFailed]: { from: [VmStatus.Provisioning], to: VmStatus.Failed },
  [VmEvent.DeleteRequested]: { from: [VmStatus.Created, VmStatus.Failed], to: VmStatus.Deleting },
  [VmEvent.Deleted]: { from: [VmStatus.Deleting], to: VmStatus.Deleted },
  [VmEvent.DeleteFailed]: { from: [VmStatus.Deleting], to: VmStatus.Failed },
  [VmEvent.FoundMissing]: { from: [VmStatus.Created], to: VmStatus.Failed },
  [VmEvent.RecordDeleted]: { from: [VmStatus.Failed], to: VmStatus.Deleted },
};

export function transitionOf(event: VmEvent): Transition {
  return TRANSITIONS[event];
}

export function isAllowed(current: VmStatus, event: VmEvent): boolean {
  return TRANSITIONS[event].from.includes(current);
}

/** Throws InvalidTransitionError (409) unless `event` may happen to a VM in `current`. */
export function assertAllowed(current: VmStatus, event: VmEvent, action: string): void {
  if (!isAllowed(current, event)) throw new InvalidTransitionError(current, TRANSITIONS[event].to, action);
}

/** Whether any event leads from one status to the other. */
export function canTransition(from: VmStatus, to: VmStatus): boolean {
  return Object.values(TRANSITIONS).some((t) => t.to === to && t.from.includes(from));
}
