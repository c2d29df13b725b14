import { VmplaneApiError, type CapacityAlternativeDto } from '../../client/src';

/** Exit codes; documented in docs/cli.md. */
export const EXIT = {
  ok: 0,
  /** Anything else: the API refused the request (400, 409, …), failed (5xx), was unreachable, or the VM failed. */
  failure: 1,
  /** The command line was wrong (unknown option, missing argument, bad number). */
  usage: 2,
  /** Not logged in, token expired or rejected (401), or not allowed (403). */
  auth: 3,
  /** No such VM or operation (404). */
  notFound: 4,
  /** No capacity for the request (503 insufficient_capacity) or over quota (403 quota_exceeded). */
  capacity: 5,
  /** Ctrl-C at a prompt. */
  cancelled: 130,
} as const;

/** A failure that ends the command with one line on stderr and an exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failure,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

const CAPACITY_CODES = new Set(['insufficient_capacity', 'quota_exceeded']);

export function exitCodeForProblem(status: number, code: string | null): number {
  if (code && CAPACITY_CODES.has(code)) return EXIT.capacity;
  if (status === 401 || status === 403) return EXIT.auth;
  if (status === 404) return EXIT.notFound;
  return EXIT.failure;
}

export function describeAlternatives(alternatives: CapacityAlternativeDto[] | undefined): string {
  if (!alternatives || alternatives.length === 0) return '';
  const list = alternatives.map((a) => (a.gpu_profile ? `${a.gpu_profile} of ${a.gpu_model ?? 'any GPU'}` : `${a.gpu_count}×${a.gpu_model ?? 'any GPU'}`) + ` in ${a.region}`).join(', ');
  return ` (alternatives: ${list})`;
}

/** Turns anything thrown into the one line the CLI prints, and the exit code. */
export function describeError(error: unknown, api: string): { message: string; exitCode: number } {
  if (error instanceof CliError) return { message: error.message, exitCode: error.exitCode };
  if (error instanceof VmplaneApiError) {
    const problem = error.problem;
    if (!problem) return { message: `http_${error.status}: the API answered ${error.status} ${error.response.statusText}`.trim(), exitCode: exitCodeForProblem(error.status, null) };
    let message = `${problem.code}: ${oneLine(problem.detail)}`;
    const fields = (problem.errors ?? []).filter((e) => !problem.detail.includes(e.message));
    if (fields.length > 0) message += ` (${fields.map((e) => `${e.field}: ${e.message}`).join('; ')})`;
    message += describeAlternatives(problem.alternatives);
    if (error.status === 401) message += ' (run: vmplane login)';
    return { message, exitCode: exitCodeForProblem(error.status, problem.code) };
  }
  const cause = networkCause(error);
  if (cause) {
    return {
      message: `cannot reach the API at ${api}: ${cause} (is the server running? set --api or VMPLANE_API)`,
      exitCode: EXIT.failure,
    };
  }
  return { message: oneLine(error instanceof Error ? error.message : String(error)), exitCode: EXIT.failure };
}

/** fetch() rejects with TypeError('fetch failed') and the socket error as its cause. */
function networkCause(error: unknown): string | null {
  if (!(error instanceof TypeError) || !/fetch failed/i.test(error.message)) return null;
  const cause = (error as { cause?: { code?: string; message?: string; errors?: { code?: string }[] } }).cause;
  return cause?.code ?? cause?.errors?.[0]?.code ?? cause?.message ?? 'network error';
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
