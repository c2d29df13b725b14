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
