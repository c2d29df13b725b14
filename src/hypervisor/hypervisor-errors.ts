import { AuthenticationError, ClientException, DeviceBusyError, NoResourcesAvailableError } from '@vmplane/sdk';

export type HypervisorErrorKind = 'no_resources' | 'authentication' | 'device_busy' | 'client' | 'unknown';

export interface ClassifiedError {
  kind: HypervisorErrorKind;
  message: string;
}

/**
 * Names whatever the SDK threw. The SDK's errors are matched by class; any
 * other value — including one that is not an Error at all — is 'unknown'.
 */
export function classifyHypervisorError(error: unknown): ClassifiedError {
  if (error instanceof NoResourcesAvailableError) return { kind: 'no_resources', message: error.message };
  if (error instanceof AuthenticationError) return { kind: 'authentication', message: error.message };
  if (error instanceof DeviceBusyError) return { kind: 'device_busy', message: error.message };
  if (error instanceof ClientException) return { kind: 'client', message: error.message };
  if (error instanceof Error) return { kind: 'unknown', message: `${error.name}: ${error.message}` };
  return { kind: 'unknown', message: `non-Error value thrown: ${describe(error)}` };
}

function describe(value: unknown): string {
  try {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    return (text ?? String(value)).slice(0, 200);
  } catch {
    return String(value).slice(0, 200);
  }
}

/** An error that carries its classification and how many attempts were made. */
export class HypervisorCallError extends Error {
  constructor(
    readonly classified: ClassifiedError,
    readonly attempts: number,
  ) {
    super(classified.message);
    this.name = 'HypervisorCallError';
  }
}
