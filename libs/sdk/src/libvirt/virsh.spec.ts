import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostUnreachableError, HypervisorCommandError } from '../errors';
import { Virsh, VirshError } from './virsh';

/**
 * A stand-in for virsh that fails the way libvirt does (the hypervisor's
 * failure modes are what is under test here): it acts on the subcommand,
 * which follows `--quiet --connect URI`.
 */
function fakeVirsh(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'fake-virsh-')), 'virsh');
  writeFileSync(
    file,
    `#!/bin/sh
shift 3
last=""; for a in "$@"; do last="$a"; done
case "$1" in
  list) echo vmplane-a; echo other ;;
  hang) exec sleep 30 ;;
  dominfo) echo "error: failed to get domain 'x'" >&2; exit 1 ;;
  connect) printf 'error: failed to connect to the hypervisor\\nerror: Cannot recv data: ssh: connect to host gpu-17 port 22: Connection refused\\n' >&2; exit 1 ;;
  vol-download) case "$2" in fail) echo "error: failed to get vol 'x'" >&2; exit 1 ;; *) printf 'disk-bytes' > "$last" ;; esac ;;
  vol-upload) case "$2" in fail) echo "error: internal error: upload refused" >&2; exit 1 ;; *) cat "$last" > "$(dirname "$0")/uploaded" ;; esac ;;
esac
`,
  );
  chmodSync(file, 0o755);
  return file;
}

describe(Virsh.name, () => {
  const binary = fakeVirsh();
  const virsh = new Virsh({ binary, timeoutMs: 1000, transferTimeoutMs: 10_000 });
  const host = { host: 'gpu-17', uri: 'qemu+ssh://ops@gpu-17/system' };

  it('returns what the command printed', async () => {
    expect(await virsh.run(host, ['list'])).toBe('vmplane-a\nother\n');
  });

  it('makes a connection failure and a command past its timeout a HostUnreachableError naming the host', async () => {
    const refused = await virsh.run(host, ['connect']).catch((e: unknown) => e);
    expect(refused).toEqual(new HostUnreachableError('gpu-17', host.uri, 'Cannot recv data: ssh: connect to host gpu-17 port 22: Connection refused'));
    const hung = await virsh.run(host, ['hang']).catch((e: unknown) => e);
    expect(hung).toEqual(new HostUnreachableError('gpu-17', host.uri, 'virsh hang did not finish within 1 s'));
  });

  it("keeps libvirt's own words for other failures, and knows 'not found' when it sees it", async () => {
    const error = (await virsh.run(host, ['dominfo', 'x']).catch((e: unknown) => e)) as VirshError;
    expect(error).toBeInstanceOf(VirshError);
    expect(error.message).toBe("virsh dominfo: failed to get domain 'x'");
    expect(error.notFound).toBe(true);
    expect(error.notRunning).toBe(false);
  });

  it('says so when virsh is not installed', async () => {
    const missing = new Virsh({ binary: '/nonexistent/virsh' });
    await expect(missing.run(host, ['list'])).rejects.toEqual(new HypervisorCommandError('/nonexistent/virsh is not installed on the control plane (install libvirt-clients)'));
  });

  it('pipes a volume from one host to another through a FIFO', async () => {
    await virsh.pipeVolume(host, ['vol-download', 'ok'], { host: 'gpu-18', uri: 'qemu+ssh://ops@gpu-18/system' }, ['vol-upload', 'ok']);
    expect(readFileSync(join(binary, '..', 'uploaded'), 'utf8')).toBe('disk-bytes');
  });

  it('ends a pipe whose one side fails before opening the FIFO, instead of leaving the other blocked', async () => {
    const to = { host: 'gpu-18', uri: 'qemu+ssh://ops@gpu-18/system' };
    const started = Date.now();
    await expect(virsh.pipeVolume(host, ['vol-download', 'fail'], to, ['vol-upload', 'ok'])).rejects.toThrow("virsh vol-download: failed to get vol 'x'");
    await expect(virsh.pipeVolume(host, ['vol-download', 'ok'], to, ['vol-upload', 'fail'])).rejects.toThrow('virsh vol-upload: internal error: upload refused');
    expect(Date.now() - started).toBeLessThan(8000);
  });
});
