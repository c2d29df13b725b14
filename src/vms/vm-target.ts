import type { HypervisorTarget } from '@vmplane/sdk';
import type { VmEntity } from './vm.entity';

/** Where the VM lives on the hypervisor: its host (by name and libvirt URI), or where a shelved VM's disk is kept. */
export function targetOf(vm: VmEntity): HypervisorTarget {
  if (vm.diskRef) return { host: vm.diskRef.host, uri: vm.diskRef.uri };
  return { host: vm.host?.name ?? null, uri: vm.host?.hypervisorUri ?? null };
}
