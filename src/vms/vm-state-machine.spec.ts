import { InvalidTransitionError } from '../common/domain-errors';
import { VmStatus } from './vm.entity';
import { VmEvent, assertAllowed, canTransition, isAllowed, transitionOf } from './vm-state-machine';

describe('VM state machine', () => {
  const statuses = Object.values(VmStatus);
  const events = Object.values(VmEvent);

  /** The whole table: for every event, the statuses it may start from. Anything else must be refused. */
  const expected: Record<VmEvent, VmStatus[]> = {
    [VmEvent.Provisioned]: [VmStatus.Provisioning],
    [VmEvent.ProvisionFailed]: [VmStatus.Provisioning],
    [VmEvent.DeleteRequested]: [VmStatus.Created, VmStatus.Failed],
    [VmEvent.Deleted]: [VmStatus.Deleting],
    [VmEvent.DeleteFailed]: [VmStatus.Deleting],
    [VmEvent.FoundMissing]: [VmStatus.Created],
    [VmEvent.RecordDeleted]: [VmStatus.Failed],
  };

  it.each(events.flatMap((event) => statuses.map((status) => [event, status] as const)))('%s from %s', (event, status) => {
    expect(isAllowed(status, event)).toBe(expected[event].includes(status));
  });

  it('refuses deleting a VM that is still provisioning, with a 409-mapped error naming both states', () => {
    let caught: unknown;
    try {
      assertAllowed(VmStatus.Provisioning, VmEvent.DeleteRequested, 'delete');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidTransitionError);
    expect((caught as InvalidTransitionError).code).toBe('invalid_state_transition');
    expect((caught as Error).message).toBe('Cannot delete a VM that is provisioning');
    expect((caught as InvalidTransitionError).extensions).toMatchObject({ current_status: 'provisioning', target_status: 'deleting' });
  });

  it('treats deleted as final and never returns to provisioning', () => {
    for (const to of statuses) expect(canTransition(VmStatus.Deleted, to)).toBe(false);
    for (const from of statuses) expect(canTransition(from, VmStatus.Provisioning)).toBe(false);
    expect(canTransition(VmStatus.Provisioning, VmStatus.Deleted)).toBe(false);
    expect(canTransition(VmStatus.Created, VmStatus.Deleted)).toBe(false);
  });

  it('every event leads to the status it names', () => {
    expect(transitionOf(VmEvent.Provisioned).to).toBe(VmStatus.Created);
    expect(transitionOf(VmEvent.DeleteRequested).to).toBe(VmStatus.Deleting);
    expect(transitionOf(VmEvent.RecordDeleted).to).toBe(VmStatus.Deleted);
  });
});
