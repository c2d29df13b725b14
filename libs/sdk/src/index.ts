export { Client, DEFAULT_FAILURE_RATE } from './client';
export type { ClientOptions } from './client';
export {
  AuthenticationError,
  ClientException,
  DeviceBusyError,
  InvalidVmSpecError,
  NoResourcesAvailableError,
} from './errors';
export type { CreateVmRequest, VirtualMachine } from './virtual-machine';
export { seededRandom } from './seeded-random';
