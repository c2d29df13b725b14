import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** The URI the libvirt tier drives: the local system daemon, as CI starts it. */
export const TEST_URI = 'qemu:///system';

/** What the libvirt tier needs on this machine; the first thing missing, or null when it is all there. */
export function libvirtProblem(): string | null {
  const checks: [string, string[], string][] = [
    ['virsh', ['--version'], 'virsh is not installed (libvirt-clients)'],
    ['virt-xml-validate', ['--help'], 'virt-xml-validate is not installed (libvirt-clients, libxml2-utils)'],
    ['genisoimage', ['--version'], 'genisoimage is not installed'],
    ['qemu-img', ['--version'], 'qemu-img is not installed (qemu-utils)'],
  ];
  for (const [binary, args, problem] of checks) {
    try {
      execFileSync(binary, args, { stdio: 'ignore', timeout: 10_000 });
    } catch (error) {
      // virt-xml-validate --help exits non-zero; only a missing binary matters.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return problem;
    }
  }
  try {
    const networks = virsh(['net-list', '--name']);
    if (!networks.split('\n').map((n) => n.trim()).includes('default')) return `the libvirt network "default" is not active on ${TEST_URI}`;
  } catch (error) {
    return `libvirtd does not answer on ${TEST_URI}: ${(error as Error).message.split('\n').slice(0, 3).join(' ')}`;
  }
  return null;
}

export const LIBVIRT_PROBLEM = libvirtProblem();

/**
 * `describe` for the libvirt tier: runs when libvirt is usable; otherwise a
 * visible skipped test that says why, or with REQUIRE_LIBVIRT=1 (CI) a failure.
 */
export function describeLibvirt(name: string, body: () => void): void {
  if (!LIBVIRT_PROBLEM) {
    describe(name, body);
    return;
  }
  if (process.env.REQUIRE_LIBVIRT !== '1') {
    process.stdout.write(`\n*** ${LIBVIRT_PROBLEM}.\n*** SKIPPED the libvirt tier (${name}). Set REQUIRE_LIBVIRT=1 to make this a failure.\n\n`);
  }
  describe(name, () => {
    if (process.env.REQUIRE_LIBVIRT === '1') {
      it('libvirt is usable (REQUIRE_LIBVIRT=1)', () => {
        throw new Error(`REQUIRE_LIBVIRT=1 but ${LIBVIRT_PROBLEM}`);
      });
    } else {
      it.skip(`SKIPPED the libvirt tier: ${LIBVIRT_PROBLEM} (set REQUIRE_LIBVIRT=1 to make this a failure)`, () => undefined);
    }
  });
}

/** virsh on the test URI, for the tests' own look at what the driver did. */
export function virsh(args: string[]): string {
  return execFileSync('virsh', ['--quiet', '--connect', TEST_URI, ...args], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** virsh that answers null instead of throwing (a domain or volume that is not there). */
export function virshOrNull(args: string[]): string | null {
  try {
    return virsh(args);
  } catch {
    return null;
  }
}

/** Builds (or finds, cached) the test guest and returns its image path: the script's last line. */
export function testGuestImage(): string {
  const out = execFileSync('bash', [join(__dirname, '..', '..', '..', 'scripts', 'build-test-guest.sh')], { encoding: 'utf8', timeout: 300_000, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = out.trim().split('\n');
  return lines[lines.length - 1];
}

export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | null | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
