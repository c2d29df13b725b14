/**
 * The SDK's errors. In the original Python SDK `ClientException` derives from
 * `BaseException`, so a generic handler does not catch it: callers must handle
 * these explicitly, and must also expect values that are not `Error`s at all.
 */
export class ClientException extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class AuthenticationError extends ClientException {}

export class NoResourcesAvailableError extends ClientException {}

/** Raised when a requested device is already attached to a live VM on the hypervisor. */
export class DeviceBusyError extends ClientException {
  constructor(readonly devices: string[]) {
    super(`Device(s) already attached to a live virtual machine: ${devices.join(', ')}`);
  }
}

/** Raised for a VM spec the hypervisor cannot accept (the original validated it with pydantic). */
export class InvalidVmSpecError extends ClientException {}

/**
 * A host that does not answer: never to be read as "it has no VMs". Names the
 * host (and its URI) so that an operator knows where to look.
 */
export class HostUnreachableError extends ClientException {
  constructor(
    readonly host: string | null,
    readonly uri: string,
    readonly reason: string,
  ) {
    super(`Host ${host ?? '(default)'} (${uri}) did not answer: ${reason}`);
  }
}

/** A verb on a VM the hypervisor does not have (deleteVm instead succeeds, as the original did). */
export class VmNotFoundError extends ClientException {
  constructor(readonly vmId: string) {
    super(`No virtual machine ${vmId} on the hypervisor`);
  }
}

/** The VM's power state does not allow the verb (e.g. a reboot of a shut-off VM, a resize of a running one). */
export class InvalidVmStateError extends ClientException {
  constructor(
    readonly vmId: string,
    readonly powerState: string,
    verb: string,
  ) {
    super(`Cannot ${verb} virtual machine ${vmId} while it is ${powerState.replace('_', ' ')}`);
  }
}

/** A failure that says nothing about the VM and is worth retrying (the simulator injects it on stop, reboot and shelve). */
export class TransientHypervisorError extends ClientException {}

/** The hypervisor refused or failed a command; the message carries its own words. */
export class HypervisorCommandError extends ClientException {}
