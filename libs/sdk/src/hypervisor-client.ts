import type {
  CreateVmRequest,
  DiskRef,
  GpuDevice,
  HypervisorTarget,
  VirtualMachine,
} from './virtual-machine';

export interface StopOptions {
  /** Seconds to wait for the guest to shut down before forcing it off. */
  timeoutSeconds?: number;
  /** Force it off at once (pull the plug). */
  force?: boolean;
}

export interface RebootOptions {
  /** A reset (the reset button) instead of asking the guest to reboot. */
  hard?: boolean;
}

export interface ResizeRequest {
  cpuCores?: number;
  /** MiB */
  memory?: number;
  /** The VM's GPUs after the resize (all of them, not a difference). */
  gpuDevices?: GpuDevice[];
}

/** What unshelveVm needs: the create request that made the VM, with the disk to boot from and the new target. */
export type UnshelveRequest = CreateVmRequest & { diskRef: DiskRef };

export interface Inventory {
  vms: VirtualMachine[];
  /** Hosts that did not answer; their VMs are unknown, not gone. */
  unreachable: { target: HypervisorTarget; error: string }[];
}

/**
 * The hypervisor SDK both drivers implement: the simulator (`Client`) and the
 * libvirt driver (`LibvirtClient`). The seed's authenticate / createVm /
 * deleteVm keep the original SDK's behaviour; everything else is ours.
 *
 * A `target` names the host a VM lives on; omitted, the driver's default host
 * (the simulator has one). A host that does not answer raises
 * HostUnreachableError naming it, never an empty answer.
 */
export interface HypervisorClient {
  authenticated: boolean;
  /** Throws AuthenticationError without credentials; every other call needs it first. */
  authenticate(): boolean;
  /** Makes and starts a VM. May fail with NoResourcesAvailableError, DeviceBusyError, InvalidVmSpecError, HostUnreachableError. */
  createVm(request: CreateVmRequest): Promise<VirtualMachine>;
  /** Stops and removes the VM, its volumes and its mediated devices. Already gone ⇒ true, as the original. */
  deleteVm(id: string, target?: HypervisorTarget): Promise<boolean>;
  /** The VM, or null when the hypervisor does not have it. */
  getVm(id: string, target?: HypervisorTarget): Promise<VirtualMachine | null>;
  /** Every VM that carries vmplane metadata (of any installation) on the targets; throws if one does not answer. */
  listVms(targets?: HypervisorTarget[]): Promise<VirtualMachine[]>;
  /** Like listVms, but reports each host that does not answer instead of throwing. */
  inventory(targets: HypervisorTarget[]): Promise<Inventory>;
  /** The last maxBytes (default 64 KiB) of the VM's serial console. */
  consoleTail(id: string, target?: HypervisorTarget, maxBytes?: number): Promise<string>;
  /** Powers the VM on; a running VM is returned as it is. */
  startVm(id: string, target?: HypervisorTarget): Promise<VirtualMachine>;
  /** Asks the guest to shut down, and forces it off after timeoutSeconds; a shut-off VM is returned as it is. */
  stopVm(id: string, target?: HypervisorTarget, options?: StopOptions): Promise<VirtualMachine>;
  /** Reboots a running VM (InvalidVmStateError when it is shut off). */
  rebootVm(id: string, target?: HypervisorTarget, options?: RebootOptions): Promise<VirtualMachine>;
  /** Stops the VM if needed and removes it and its devices, keeping its disk. */
  shelveVm(id: string, target?: HypervisorTarget, options?: StopOptions): Promise<DiskRef>;
  /** Makes the VM again from its kept disk on request.uri/host, moving the disk there when it is elsewhere. */
  unshelveVm(request: UnshelveRequest): Promise<VirtualMachine>;
  /** Changes the size of a shut-off VM (InvalidVmStateError when it runs); its power state is kept. */
  resizeVm(id: string, target: HypervisorTarget | undefined, resize: ResizeRequest): Promise<VirtualMachine>;
  close?(): void;
}
