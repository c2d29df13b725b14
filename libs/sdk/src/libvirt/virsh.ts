import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostUnreachableError, HypervisorCommandError } from '../errors';

/** A host as virsh reaches it: its libvirt URI, and its name for error messages. */
export interface VirshTarget {
  host: string | null;
  uri: string;
}

export interface VirshOptions {
  /** The virsh binary (default: `virsh` on PATH). */
  binary?: string;
  /** Milliseconds one ordinary command may take before the host counts as not answering. */
  timeoutMs?: number;
  /** Milliseconds a volume upload or download may take. */
  transferTimeoutMs?: number;
}

/** A command libvirt refused or failed; callers look at what it says to decide (not found, not running…). */
export class VirshError extends HypervisorCommandError {
  constructor(
    readonly command: string,
    readonly stderr: string,
  ) {
    super(`virsh ${command}: ${stderr || 'failed without a message'}`);
  }

  /** The domain, volume, pool or node device does not exist. */
  get notFound(): boolean {
    return /failed to get (domain|vol|pool|node device)|not found|no (domain|storage vol|storage pool|node device) with matching/i.test(this.stderr);
  }

  get notRunning(): boolean {
    return /domain is not running/i.test(this.stderr);
  }

  get alreadyRunning(): boolean {
    return /domain is already (active|running)/i.test(this.stderr);
  }
}

const CONNECT_FAILURE = /failed to connect to the hypervisor/i;
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

/** Joins virsh's `error:` lines into one sentence, without the prefixes. */
function cleanStderr(stderr: string): string {
  return stderr
    .split('\n')
    .map((line) => line.replace(/^error:\s*/, '').trim())
    .filter((line) => line.length > 0)
    .join('; ')
    .slice(0, 2000);
}

/**
 * libvirt's own client, run with argument arrays (never a shell) and a
 * timeout. A connection that fails or a command that does not finish in time
 * is a HostUnreachableError naming the host; any other failure a VirshError.
 */
export class Virsh {
  private readonly binary: string;
  private readonly timeoutMs: number;
  private readonly transferTimeoutMs: number;

  constructor(options: VirshOptions = {}) {
    this.binary = options.binary ?? 'virsh';
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.transferTimeoutMs = options.transferTimeoutMs ?? 30 * 60_000;
  }

  /** Runs one command; resolves with its standard output. */
  run(target: VirshTarget, args: string[], options: { timeoutMs?: number } = {}): Promise<string> {
    const timeout = options.timeoutMs ?? this.timeoutMs;
    return new Promise((resolve, reject) => {
      execFile(
        this.binary,
        ['--quiet', '--connect', target.uri, ...args],
        { timeout, killSignal: 'SIGKILL', maxBuffer: MAX_OUTPUT_BYTES, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } },
        (error, stdout, stderr) => {
          if (!error) return resolve(stdout);
          reject(this.failure(target, args, error, stderr, timeout));
        },
      );
    });
  }

  /** A volume upload or download: the long timeout. */
  transfer(target: VirshTarget, args: string[]): Promise<string> {
    return this.run(target, args, { timeoutMs: this.transferTimeoutMs });
  }

  /**
   * Streams a volume from one host to another through libvirt's volume
   * streams: `vol-download` into a FIFO that `vol-upload` reads, so the bytes
   * pass through the control plane without landing on its disk. (virsh cannot
   * open /dev/stdout when it is a Node pipe, which is a socket.)
   */
  async pipeVolume(from: VirshTarget, download: string[], to: VirshTarget, upload: string[]): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'vmplane-stream-'));
    try {
      const fifo = join(dir, 'volume');
      await new Promise<void>((resolve, reject) => execFile('mkfifo', ['-m', '600', fifo], (error) => (error ? reject(error) : resolve())));
      const sending = this.transfer(from, [...download, fifo]);
      const receiving = this.transfer(to, [...upload, fifo]);
      // A side that fails before it opens the FIFO leaves the other blocked in open(): open the other end for it, so it ends too.
      const openEnd = (args: string[]) => execFile('timeout', ['5', 'dd', ...args, 'status=none'], () => undefined);
      sending.catch(() => openEnd(['if=/dev/null', `of=${fifo}`]));
      receiving.catch(() => openEnd([`if=${fifo}`, 'of=/dev/null']));
      // Both sides end before the FIFO is removed: a side still blocked on a removed FIFO would never be reached.
      const [sent, received] = await Promise.allSettled([sending, receiving]);
      if (sent.status === 'rejected') throw sent.reason;
      if (received.status === 'rejected') throw received.reason;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Downloads (part of) a volume and returns its bytes: vol-download into a private temporary file. */
  async download(target: VirshTarget, args: string[]): Promise<Buffer> {
    const dir = await mkdtemp(join(tmpdir(), 'vmplane-download-'));
    try {
      const file = join(dir, 'volume');
      await this.transfer(target, [...args, file]);
      return await readFile(file);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private failure(target: VirshTarget, args: string[], error: Error & { code?: unknown; killed?: boolean }, stderr: string, timeoutMs: number): Error {
    if (error.code === 'ENOENT') return new HypervisorCommandError(`${this.binary} is not installed on the control plane (install libvirt-clients)`);
    if (error.killed) return new HostUnreachableError(target.host, target.uri, `virsh ${args[0]} did not finish within ${Math.round(timeoutMs / 1000)} s`);
    const text = cleanStderr(stderr);
    if (CONNECT_FAILURE.test(stderr)) return new HostUnreachableError(target.host, target.uri, text.replace(/^failed to connect to the hypervisor;?\s*/i, '') || 'connection failed');
    return new VirshError(args[0], text);
  }
}
