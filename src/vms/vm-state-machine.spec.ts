import { InvalidTransitionError } from '../common/domain-errors';
import { VmStatus } from './vm.entity';
import { assertTransition, canTransition, sourcesOf } from './vm-state-machine';

describe('VM state machine', () => {
  const all = Object.values(VmStatus);

  it.each([
    [VmStatus.Provisioning, VmStatus.Created],
    [VmStatus.Provisioning, VmStatus.Failed],
    [VmStatus.Created, VmStatus.Deleting],
    [VmStatus.Deleting, VmStatus.Deleted],
    [VmStatus.Deleting, VmStatus.Failed],
    [VmStatus.Created, VmStatus.Failed],
    [VmStatus.Failed, VmStatus.Deleting],
    [VmStatus.Failed, VmStatus.Deleted],
  ])('allows %s → %s', (from, to) => {
    expect(canTransition(from, to)).toBe(true);
    expect(() => assertTransition(from, to, 'test')).not.toThrow();
  });

  it('refuses deleting a VM that is still provisioning, with a 409-mapped error', () => {
    expect(() => assertTransition(VmStatus.Provisioning, VmStatus.Deleting, 'delete')).toThrow(InvalidTransitionError);
    try {
      assertTransition(VmStatus.Provisioning, VmStatus.Deleting, 'delete');
    } catch (error) {
      expect((error as InvalidTransitionError).code).toBe('invalid_state_transition');
      expect((error as Error).message).toBe('Cannot delete a VM that is provisioning');
    }
  });

  it('treats deleted as final: nothing leaves it', () => {
    for (const to of all) expect(canTransition(VmStatus.Deleted, to)).toBe(false);
  });

  it('never goes back to provisioning, and never skips from provisioning to deleted', () => {
    for (const from of all) expect(canTransition(from, VmStatus.Provisioning)).toBe(false);
    expect(canTransition(VmStatus.Provisioning, VmStatus.Deleted)).toBe(false);
    expect(canTransition(VmStatus.Created, VmStatus.Deleted)).toBe(false);
    expect(canTransition(VmStatus.Created, VmStatus.Created)).toBe(false);
  });

  it('lists the sources of a transition', () => {
    expect(sourcesOf(VmStatus.Deleting).sort()).toEqual([VmStatus.Created, VmStatus.Failed].sort());
    expect(sourcesOf(VmStatus.Created)).toEqual([VmStatus.Provisioning]);
  });
});
