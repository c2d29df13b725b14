import { isIP } from 'node:net';
import { InvalidVmSpecError } from './errors';

/** A VM as the hypervisor knows it. Field names follow the original SDK's model. */
export interface VirtualMachine {
  id: string;
  name: string;
  cpu_cores: number;
  /** MiB */
  memory: number;
  /** GiB */
  disk_size: number;
  public_ip: string | null;
  labels: string[];
  /** The host the VM runs on (simulator extension). */
  host: string | null;
  /** Device ids attached to the VM (simulator extension). */
  gpus: string[];
  created_at: string;
}

export interface CreateVmRequest {
  name: string;
  cpuCores: number;
  memory: number;
  diskSize: number;
  publicIp?: string | null;
  labels?: string[] | null;
  host?: string | null;
  gpus?: string[] | null;
}

export function validateCreateVmRequest(req: CreateVmRequest): void {
  if (typeof req.name !== 'string' || req.name.length === 0) {
    throw new InvalidVmSpecError('name must be a non-empty string');
  }
  for (const [field, value] of [
    ['cpuCores', req.cpuCores],
    ['memory', req.memory],
    ['diskSize', req.diskSize],
  ] as const) {
    if (!Number.isInteger(value)) throw new InvalidVmSpecError(`${field} must be an integer`);
  }
  if (req.publicIp != null && isIP(req.publicIp) === 0) {
    throw new InvalidVmSpecError('public_ip must be a valid IPv4 or IPv6 address');
  }
}
