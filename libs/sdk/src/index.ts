export { Client, DEFAULT_FAILURE_RATE } from './client';
export type { ClientOptions } from './client';
export {
  AuthenticationError,
  ClientException,
  DeviceBusyError,
  HostUnreachableError,
  HypervisorCommandError,
  InvalidVmSpecError,
  InvalidVmStateError,
  NoResourcesAvailableError,
  TransientHypervisorError,
  VmNotFoundError,
} from './errors';
export type { HypervisorClient, Inventory, RebootOptions, ResizeRequest, StopOptions, UnshelveRequest } from './hypervisor-client';
export type {
  CreateVmRequest,
  DiskRef,
  GpuDevice,
  HypervisorTarget,
  ImageRef,
  PowerState,
  VirtualMachine,
  VmMetadata,
} from './virtual-machine';
export { IMAGE_NAME, MAX_SSH_KEYS, USER_DATA_MAX_BYTES, parsePciAddress } from './virtual-machine';
export { seededRandom } from './seeded-random';
export { LibvirtClient } from './libvirt/libvirt-client';
export type { LibvirtClientOptions } from './libvirt/libvirt-client';
