import type { GpuDetail } from '../fleet/fleet.repository';
import { VmStatus } from './vm.entity';

/** A VM as services work with it: the row plus its host's name and region. */
export interface VmView {
  id: string;
  ownerId: string;
  name: string;
  cpuCores: number;
  memory: number;
  diskSize: number;
  publicIp: string | null;
  labels: string[];
  status: VmStatus;
  statusReason: string | null;
  hostId: string | null;
  hostName: string | null;
  region: string | null;
  gpuCount: number;
  gpuModel: string | null;
  hypervisorId: string | null;
  releasedAt: Date | null;
  deletedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  /** Filled when the VM has GPUs and the caller needs them. */
  gpus?: GpuDetail[];
}
