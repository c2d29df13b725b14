import { isIP } from 'node:net';
import { InvalidVmSpecError } from './errors';

/** What the hypervisor says about a VM's power: `unknown` covers paused, suspended and anything unreadable. */
export type PowerState = 'running' | 'shut_off' | 'unknown';

/** Who a VM belongs to, stored with it on the hypervisor so an installation can tell its own VMs apart. */
export interface VmMetadata {
  /** The installation (control plane) that made the VM; two installations may share hosts. */
  installationId: string;
  /** The platform's VM id. */
  vmId: string;
  /** The platform user who owns the VM. */
  ownerId: string;
}

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
  /** Device ids attached to the VM (simulator extension): GPU UUIDs. */
  gpus: string[];
  created_at: string;
  power_state: PowerState;
  /** null for a VM made without metadata (the original SDK's callers). */
  metadata: VmMetadata | null;
}

/** A base image on the control plane, uploaded once into each host's storage pool. */
export interface ImageRef {
  /**
   * The image's registration, unique across installations (a UUID). With the name it makes the base
   * volume's name, so two installations sharing a host, or an image registered again under a new name,
   * never share a base that holds other content.
   */
  id: string;
  /** Unique among an installation's images; becomes part of a volume name, so letters, digits, '.', '_' and '-' only. */
  name: string;
  /** Absolute path of the image file on the control plane. */
  path: string;
  format: 'qcow2' | 'raw';
}

/** A GPU the scheduler claimed for the VM. */
export interface GpuDevice {
  uuid: string;
  /** As nvidia-smi prints it (`00000000:18:00.0`) or the short form (`0000:18:00.0`). */
  pciAddress: string;
  /** The host NUMA node the GPU hangs off, when known: vCPUs and memory are pinned to it. */
  numaNode?: number | null;
  /** vGPU / MIG-backed vGPU: the mediated-device type to create on this GPU (e.g. `nvidia-1061`); null for passthrough. */
  mdevType?: string | null;
}

/** A disk kept by shelveVm; unshelveVm boots from it again. */
export interface DiskRef {
  /** The hypervisor id of the VM the disk belongs to; the unshelved VM gets it back. */
  hypervisorId: string;
  /** Where the disk is: the host's name and libvirt URI (null: the simulator or the default URI). */
  host: string | null;
  uri: string | null;
  /** The storage pool and volume holding it (null pool: the simulator). */
  pool: string | null;
  volume: string;
  /** GiB */
  sizeGib: number;
}

export interface CreateVmRequest {
  name: string;
  cpuCores: number;
  memory: number;
  diskSize: number;
  publicIp?: string | null;
  labels?: string[] | null;
  /** The host's name (the simulator records it; the libvirt driver puts it in the metadata). */
  host?: string | null;
  /** The host's libvirt URI; null or absent: the driver's default URI. */
  uri?: string | null;
  /** GPU UUIDs, for callers that only know them (the seed's shape); gpuDevices supersedes it. */
  gpus?: string[] | null;
  /** GPUs with their PCI addresses, for a driver that attaches real devices. */
  gpuDevices?: GpuDevice[] | null;
  metadata?: VmMetadata | null;
  image?: ImageRef | null;
  /** cloud-init user data, at most USER_DATA_MAX_BYTES. */
  userData?: string | null;
  /** OpenSSH public key lines, merged into the user data as ssh_authorized_keys. */
  sshKeys?: string[] | null;
  /** Boot from this kept disk instead of a new one (unshelve). */
  diskRef?: DiskRef | null;
}

/** Where a VM lives: the host's name and its libvirt URI (null for the simulator or the default URI). */
export interface HypervisorTarget {
  host: string | null;
  uri: string | null;
}

/** EC2's limit on user data, kept so that user data that works there works here. */
export const USER_DATA_MAX_BYTES = 16 * 1024;
export const MAX_SSH_KEYS = 32;
const SSH_KEY_MAX_BYTES = 16 * 1024;
const MAX_LABELS = 64;
const MAX_GPUS = 16;
export const IMAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** An image's registration id (a UUID from the control plane): part of a volume name too. */
const IMAGE_ID = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;
const PCI_ADDRESS = /^(?:([0-9a-fA-F]{4,8}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$/;
const MDEV_TYPE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** One line of printable ASCII: what `ssh-keygen` writes and what a cloud-config list item can hold verbatim. */
const SSH_KEY_LINE = /^(?:ssh-|ecdsa-|sk-)[A-Za-z0-9@._-]+ [A-Za-z0-9+/=]+(?: [\x20-\x7e]*)?$/;

/** A parsed PCI address, as libvirt's `<address domain= bus= slot= function=>` wants it. */
export interface PciAddress {
  domain: number;
  bus: number;
  slot: number;
  fn: number;
}

export function parsePciAddress(text: string): PciAddress | null {
  const m = PCI_ADDRESS.exec(text);
  if (!m) return null;
  const domain = parseInt(m[1] ?? '0', 16);
  if (domain > 0xffff) return null;
  return { domain, bus: parseInt(m[2], 16), slot: parseInt(m[3], 16), fn: parseInt(m[4], 10) };
}

/** Checks every field before it costs work; each problem names the field. */
export function validateCreateVmRequest(req: CreateVmRequest): void {
  if (typeof req.name !== 'string' || req.name.length === 0 || req.name.length > 255) {
    throw new InvalidVmSpecError('name must be a non-empty string of at most 255 characters');
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
  if (req.labels != null && (!Array.isArray(req.labels) || req.labels.length > MAX_LABELS || req.labels.some((l) => typeof l !== 'string' || l.length > 255))) {
    throw new InvalidVmSpecError(`labels must be at most ${MAX_LABELS} strings of at most 255 characters`);
  }
  if (req.userData != null) {
    if (typeof req.userData !== 'string') throw new InvalidVmSpecError('userData must be a string');
    const bytes = Buffer.byteLength(req.userData, 'utf8');
    if (bytes > USER_DATA_MAX_BYTES) throw new InvalidVmSpecError(`userData is ${bytes} bytes; at most ${USER_DATA_MAX_BYTES} are allowed`);
  }
  if (req.sshKeys != null) {
    if (!Array.isArray(req.sshKeys) || req.sshKeys.length > MAX_SSH_KEYS) throw new InvalidVmSpecError(`sshKeys must be at most ${MAX_SSH_KEYS} keys`);
    req.sshKeys.forEach((key, i) => {
      if (typeof key !== 'string' || key.length > SSH_KEY_MAX_BYTES || !SSH_KEY_LINE.test(key)) {
        throw new InvalidVmSpecError(`sshKeys[${i}] is not one line of an OpenSSH public key ("type base64 [comment]")`);
      }
    });
  }
  if (req.image != null) {
    if (!IMAGE_NAME.test(req.image.name ?? '')) throw new InvalidVmSpecError('image.name must be 1-64 letters, digits, ".", "_" or "-"');
    if (!IMAGE_ID.test(req.image.id ?? '')) throw new InvalidVmSpecError('image.id must be 1-64 letters, digits or "-"');
    if (typeof req.image.path !== 'string' || !req.image.path.startsWith('/')) throw new InvalidVmSpecError('image.path must be an absolute path');
    if (req.image.format !== 'qcow2' && req.image.format !== 'raw') throw new InvalidVmSpecError('image.format must be qcow2 or raw');
  }
  if (req.gpuDevices != null) {
    if (!Array.isArray(req.gpuDevices) || req.gpuDevices.length > MAX_GPUS) throw new InvalidVmSpecError(`gpuDevices must be at most ${MAX_GPUS} devices`);
    req.gpuDevices.forEach((gpu, i) => {
      if (!parsePciAddress(gpu.pciAddress ?? '')) throw new InvalidVmSpecError(`gpuDevices[${i}].pciAddress "${String(gpu.pciAddress).slice(0, 40)}" is not a PCI address`);
      if (gpu.mdevType != null && !MDEV_TYPE.test(gpu.mdevType)) throw new InvalidVmSpecError(`gpuDevices[${i}].mdevType is not a mediated-device type name`);
      if (gpu.numaNode != null && (!Number.isInteger(gpu.numaNode) || gpu.numaNode < 0 || gpu.numaNode > 1023)) {
        throw new InvalidVmSpecError(`gpuDevices[${i}].numaNode must be an integer from 0 to 1023`);
      }
    });
  }
  if (req.metadata != null) {
    for (const field of ['installationId', 'vmId', 'ownerId'] as const) {
      const value = req.metadata[field];
      if (typeof value !== 'string' || value.length === 0 || value.length > 128) {
        throw new InvalidVmSpecError(`metadata.${field} must be a non-empty string of at most 128 characters`);
      }
    }
  }
}

/** The devices a request attaches, by UUID: gpuDevices when given, else the seed's plain list. */
export function requestedGpuIds(req: Pick<CreateVmRequest, 'gpus' | 'gpuDevices'>): string[] {
  return req.gpuDevices ? req.gpuDevices.map((g) => g.uuid) : [...(req.gpus ?? [])];
}
