import { InvalidStateError } from '../common/domain-errors';
import { PowerState, VmStatus } from './vm.entity';
import { VmAction, VmEvent, actionAllowed, allowedActions, assertActionAllowed, canTransition, isAllowed, statusesAllowing, transitionOf } from './vm-state-machine';

describe('VM state machine', () => {
  const statuses = Object.values(VmStatus);
  const powers = Object.values(PowerState);

  /** The whole event table: for every event, the statuses it may start from. Anything else must be refused. */
  const events: Record<VmEvent, VmStatus[]> = {
    [VmEvent.Provisioned]: [VmStatus.Provisioning],
    [VmEvent.ProvisionFailed]: [VmStatus.Provisioning],
    [VmEvent.DeleteRequested]: [VmStatus.Created, VmStatus.Failed, VmStatus.Shelved],
    [VmEvent.Deleted]: [VmStatus.Deleting],
    [VmEvent.DeleteFailed]: [VmStatus.Deleting],
    [VmEvent.DeleteNotReached]: [VmStatus.Deleting],
    [VmEvent.ShelvedDeleteFailed]: [VmStatus.Deleting],
    [VmEvent.FoundMissing]: [VmStatus.Created],
    [VmEvent.RecordDeleted]: [VmStatus.Failed, VmStatus.Provisioning],
    [VmEvent.Shelved]: [VmStatus.Created],
    [VmEvent.Unshelved]: [VmStatus.Shelved],
  };

  it.each(Object.values(VmEvent).flatMap((event) => statuses.map((status) => [event, status] as const)))('event %s from %s', (event, status) => {
    expect(isAllowed(status, event)).toBe(events[event].includes(status));
  });

  /** The whole action table: every action from every (status, power) state. */
  const actions: Record<VmAction, [VmStatus, PowerState | '*'][]> = {
    [VmAction.Delete]: [[VmStatus.Created, '*'], [VmStatus.Failed, '*'], [VmStatus.Shelved, '*']],
    [VmAction.Stop]: [[VmStatus.Created, PowerState.Running]],
    [VmAction.Start]: [[VmStatus.Created, PowerState.ShutOff]],
    [VmAction.Reboot]: [[VmStatus.Created, PowerState.Running]],
    [VmAction.Shelve]: [[VmStatus.Created, '*']],
    [VmAction.Unshelve]: [[VmStatus.Shelved, '*']],
    [VmAction.Resize]: [[VmStatus.Created, PowerState.ShutOff], [VmStatus.Shelved, '*']],
    [VmAction.Update]: [[VmStatus.Provisioning, '*'], [VmStatus.Created, '*'], [VmStatus.Shelved, '*'], [VmStatus.Deleting, '*'], [VmStatus.Failed, '*']],
  };

  it.each(Object.values(VmAction).flatMap((action) => statuses.flatMap((status) => powers.map((power) => [action, status, power] as const))))(
    'action %s from %s / %s',
    (action, status, power) => {
      const expected = actions[action].some(([s, p]) => s === status && (p === '*' || p === power));
      expect(actionAllowed(action, status, power)).toBe(expected);
      if (expected) expect(() => assertActionAllowed(action, status, power)).not.toThrow();
      else expect(() => assertActionAllowed(action, status, power)).toThrow(InvalidStateError);
    },
  );

  it('refuses an action with a 409-mapped error naming the state and what is allowed now', () => {
    let caught: unknown;
    try {
      assertActionAllowed(VmAction.Start, VmStatus.Created, PowerState.Running);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidStateError);
    expect((caught as InvalidStateError).code).toBe('invalid_state');
    expect((caught as Error).message).toBe('Cannot start a VM that is created and running; allowed now: delete, stop, reboot, shelve, update');
    expect((caught as InvalidStateError).extensions).toEqual({ current_status: 'created', power_state: 'running', allowed_actions: ['delete', 'stop', 'reboot', 'shelve', 'update'] });
    expect(allowedActions(VmStatus.Deleted, PowerState.Unknown)).toEqual([]);
  });

  it('gives a guard the statuses an action that needs no power state starts from, and refuses one that does', () => {
    expect(statusesAllowing(VmAction.Update)).toEqual([VmStatus.Provisioning, VmStatus.Created, VmStatus.Shelved, VmStatus.Deleting, VmStatus.Failed]);
    expect(() => statusesAllowing(VmAction.Stop)).toThrow(/power state/);
  });

  it('treats deleted as final and never returns to provisioning', () => {
    for (const to of statuses) expect(canTransition(VmStatus.Deleted, to)).toBe(false);
    for (const from of statuses) expect(canTransition(from, VmStatus.Provisioning)).toBe(false);
    expect(canTransition(VmStatus.Created, VmStatus.Deleted)).toBe(false);
  });

  it('every event leads to the status it names', () => {
    expect(transitionOf(VmEvent.Provisioned).to).toBe(VmStatus.Created);
    expect(transitionOf(VmEvent.Shelved).to).toBe(VmStatus.Shelved);
    expect(transitionOf(VmEvent.Unshelved).to).toBe(VmStatus.Created);
  });
});
