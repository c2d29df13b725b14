import { InvalidStateError } from '../common/domain-errors';
import { PowerState, VmStatus } from './vm.entity';

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
  /** The delete of a created VM never reached its host (unreachable, or asked to retry): nothing changed there, so neither does the VM. */
  DeleteNotReached = 'delete_not_reached',
  /**
   * The delete of a shelved VM failed, or never reached the host that keeps its disk. It stays shelved: it holds
   * nothing else, and as a failed VM with its resources given back a second delete would be a record change only,
   * leaving the disk behind. Deleting it again goes to the host again.
   */
  ShelvedDeleteFailed = 'shelved_delete_failed',
  /** The reconciler found a created VM missing from the hypervisor. */
  FoundMissing = 'found_missing',
  /** A VM that holds nothing on the hypervisor: deleting it is only a record change. */
  RecordDeleted = 'record_deleted',
  /** Stopped and put away: its host, GPUs and quota given back, its disk kept. */
  Shelved = 'shelved',
  /** Placed again and booted from its kept disk. */
  Unshelved = 'unshelved',
}

interface Transition {
  readonly from: readonly VmStatus[];
  readonly to: VmStatus;
}

/** Every legal VM status change, in one place. Repositories derive their guards from this table. */
const TRANSITIONS: Readonly<Record<VmEvent, Transition>> = {
  [VmEvent.Provisioned]: { from: [VmStatus.Provisioning], to: VmStatus.Created },
  [VmEvent.ProvisionFailed]: { from: [VmStatus.Provisioning], to: VmStatus.Failed },
  [VmEvent.DeleteRequested]: { from: [VmStatus.Created, VmStatus.Failed, VmStatus.Shelved], to: VmStatus.Deleting },
  [VmEvent.Deleted]: { from: [VmStatus.Deleting], to: VmStatus.Deleted },
  [VmEvent.DeleteFailed]: { from: [VmStatus.Deleting], to: VmStatus.Failed },
  [VmEvent.DeleteNotReached]: { from: [VmStatus.Deleting], to: VmStatus.Created },
  [VmEvent.ShelvedDeleteFailed]: { from: [VmStatus.Deleting], to: VmStatus.Shelved },
  [VmEvent.FoundMissing]: { from: [VmStatus.Created], to: VmStatus.Failed },
  [VmEvent.RecordDeleted]: { from: [VmStatus.Failed, VmStatus.Provisioning], to: VmStatus.Deleted },
  [VmEvent.Shelved]: { from: [VmStatus.Created], to: VmStatus.Shelved },
  [VmEvent.Unshelved]: { from: [VmStatus.Shelved], to: VmStatus.Created },
};

export function transitionOf(event: VmEvent): Transition {
  return TRANSITIONS[event];
}

export function isAllowed(current: VmStatus, event: VmEvent): boolean {
  return TRANSITIONS[event].from.includes(current);
}

/** Whether any event leads from one status to the other. */
export function canTransition(from: VmStatus, to: VmStatus): boolean {
  return Object.values(TRANSITIONS).some((t) => t.to === to && t.from.includes(from));
}

/** What a user may ask of a VM; each is an operation. */
export enum VmAction {
  Delete = 'delete',
  Stop = 'stop',
  Start = 'start',
  Reboot = 'reboot',
  Shelve = 'shelve',
  Unshelve = 'unshelve',
  Resize = 'resize',
  /** Rename or relabel: the record only, nothing on the hypervisor. */
  Update = 'update',
}

/** A state an action may start from: a status, and the power state it needs (any when absent). */
type From = readonly [VmStatus, PowerState?];

/**
 * Every action and the states it is allowed from, in one place:
 * - stop keeps the host, GPUs and quota, so a start can never fail for capacity;
 * - shelve gives them back and keeps the disk; unshelve places the VM again;
 * - resize changes a shut-off VM in place, or a shelved one before it is placed again;
 * - delete works from any settled state (a failed VM may still be on the hypervisor);
 * - update (name, labels) from any state but deleted: a deleted VM's record is kept as it ended.
 */
const ACTIONS: Readonly<Record<VmAction, readonly From[]>> = {
  [VmAction.Delete]: [[VmStatus.Created], [VmStatus.Failed], [VmStatus.Shelved]],
  [VmAction.Stop]: [[VmStatus.Created, PowerState.Running]],
  [VmAction.Start]: [[VmStatus.Created, PowerState.ShutOff]],
  [VmAction.Reboot]: [[VmStatus.Created, PowerState.Running]],
  [VmAction.Shelve]: [[VmStatus.Created]],
  [VmAction.Unshelve]: [[VmStatus.Shelved]],
  [VmAction.Resize]: [[VmStatus.Created, PowerState.ShutOff], [VmStatus.Shelved]],
  [VmAction.Update]: [[VmStatus.Provisioning], [VmStatus.Created], [VmStatus.Shelved], [VmStatus.Deleting], [VmStatus.Failed]],
};

export function actionAllowed(action: VmAction, status: VmStatus, power: PowerState): boolean {
  return ACTIONS[action].some(([s, p]) => s === status && (p === undefined || p === power));
}

/** The statuses an action that needs no particular power state may start from: a repository's guard. */
export function statusesAllowing(action: VmAction): VmStatus[] {
  const from = ACTIONS[action];
  if (from.some(([, power]) => power !== undefined)) throw new Error(`${action} depends on the power state too`);
  return from.map(([status]) => status);
}

/** The actions a VM in this state accepts, in a stable order. */
export function allowedActions(status: VmStatus, power: PowerState): VmAction[] {
  return Object.values(VmAction).filter((action) => actionAllowed(action, status, power));
}

/** Throws InvalidStateError (409 invalid_state, naming the state and what is allowed) unless the action may start. */
export function assertActionAllowed(action: VmAction, status: VmStatus, power: PowerState): void {
  if (!actionAllowed(action, status, power)) throw new InvalidStateError(action, status, power, allowedActions(status, power));
}
