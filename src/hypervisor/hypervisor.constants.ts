/** The injection token of the HypervisorClient (simulator or libvirt). Only HypervisorModule's factory constructs one. */
export const HYPERVISOR_CLIENT = 'HYPERVISOR_CLIENT';

/** Label the platform puts on every hypervisor VM so the reconciler can match the two. */
export const VM_ID_LABEL_PREFIX = 'vmplane.vm-id=';

export function platformVmIdFromLabels(labels: readonly string[]): string | null {
  const label = labels.find((l) => l.startsWith(VM_ID_LABEL_PREFIX));
  return label ? label.slice(VM_ID_LABEL_PREFIX.length) : null;
}
