import { HostUnreachableError, HypervisorCommandError, InvalidVmStateError, LibvirtClient, type ImageRef, type VmMetadata } from '@vmplane/sdk';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeLibvirt, median, testGuestImage, virsh, virshOrNull, waitFor } from './support/libvirt';

const POOL = 'vmplane-test';
const INSTALLATION = 'libvirt-tier';
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTheLibvirtTier000000000000000 alice@libvirt-tier';
const GUEST_WAIT_MS = 120_000;

const metadata = (installationId = INSTALLATION): VmMetadata => ({ installationId, vmId: randomUUID(), ownerId: 'owner-1' });
const readyLine = (vmId: string) => `vmplane-guest ready instance-id=${vmId} keys=alice@libvirt-tier`;
/** The pool's volume names, after a refresh so that files virtlogd made count too. */
const volumes = (pool = POOL) => {
  virsh(['pool-refresh', pool]);
  return virsh(['vol-list', pool]).split('\n').map((line) => line.trim().split(/\s+/)[0]).filter(Boolean);
};

describeLibvirt('LibvirtClient on qemu:///system', () => {
  let client: LibvirtClient;
  let image: ImageRef;
  const made: string[] = [];

  beforeAll(() => {
    // A fixed registration id: every run shares one uploaded base.
    image = { id: '01a20000-0000-7000-8000-00000000test', name: 'test-guest', path: testGuestImage(), format: 'qcow2' };
    client = new LibvirtClient({ pool: POOL, stopTimeoutSeconds: 20 });
    client.authenticate();
  }, 300_000);

  afterAll(async () => {
    for (const id of made) await client.deleteVm(id).catch(() => undefined);
  }, 120_000);

  it('runs a VM through its whole life: create, console, stop, start, shelve, unshelve, delete', async () => {
    const meta = metadata();
    made.push(meta.vmId);
    const started = Date.now();
    const vm = await client.createVm({
      name: 'Lifecycle VM #1',
      cpuCores: 2,
      memory: 320,
      diskSize: 1,
      labels: ['team=ml', 'vmplane.vm-id=' + meta.vmId],
      image,
      sshKeys: [KEY],
      metadata: meta,
      host: 'local',
    });
    const createMs = Date.now() - started;
    expect(vm).toMatchObject({ id: meta.vmId, name: 'Lifecycle VM #1', cpu_cores: 2, memory: 320, disk_size: 1, power_state: 'running', metadata: meta, host: 'local' });

    const info = virsh(['dominfo', `vmplane-${vm.id}`]);
    expect(info).toMatch(/^State:\s+running$/m);
    expect(info).toMatch(/^CPU\(s\):\s+2$/m);
    expect(info).toMatch(/^Max memory:\s+327680 KiB$/m);
    expect(info).toMatch(new RegExp(`^UUID:\\s+${vm.id}$`, 'm'));

    await waitFor('the guest line', GUEST_WAIT_MS, async () => (await client.consoleTail(vm.id)).includes(readyLine(meta.vmId)));
    const consoleMs = Date.now() - started;
    process.stdout.write(`libvirt tier: createVm ${createMs} ms; createVm to the guest's console line ${consoleMs} ms (${virsh(['dumpxml', `vmplane-${vm.id}`]).match(/<domain type='(\w+)'/)?.[1]})\n`);

    // Stop: the guest powers off on the ACPI button.
    const stopStarted = Date.now();
    expect((await client.stopVm(vm.id)).power_state).toBe('shut_off');
    expect(virsh(['domstate', `vmplane-${vm.id}`]).trim()).toBe('shut off');
    expect(Date.now() - stopStarted).toBeLessThan(20_000);
    expect(await client.consoleTail(vm.id)).toContain('reboot: Power down');
    await expect(client.rebootVm(vm.id)).rejects.toBeInstanceOf(InvalidVmStateError);

    expect((await client.startVm(vm.id)).power_state).toBe('running');
    expect(virsh(['domstate', `vmplane-${vm.id}`]).trim()).toBe('running');
    await waitFor('the guest line after start', GUEST_WAIT_MS, async () => {
      const log = await client.consoleTail(vm.id);
      return !log.includes('Power down') && log.includes(readyLine(meta.vmId));
    });

    // Shelve: the domain goes, the disk stays.
    const diskPath = virsh(['vol-path', '--pool', POOL, `vmplane-${vm.id}-disk.qcow2`]).trim();
    const disk = await client.shelveVm(vm.id, { host: 'local', uri: null });
    expect(disk).toEqual({ hypervisorId: vm.id, host: 'local', uri: 'qemu:///system', pool: POOL, volume: `vmplane-${vm.id}-disk.qcow2`, sizeGib: 1 });
    expect(virshOrNull(['dominfo', `vmplane-${vm.id}`])).toBeNull();
    expect(volumes()).toContain(disk.volume);
    expect(volumes()).not.toContain(`vmplane-${vm.id}-seed.iso`);
    expect(await client.getVm(vm.id)).toBeNull();
    expect(await client.shelveVm(vm.id)).toMatchObject({ volume: disk.volume });

    // Unshelve on the same host: defined again on the same disk volume, and it boots.
    const back = await client.unshelveVm({ name: 'Lifecycle VM #1', cpuCores: 2, memory: 320, diskSize: 1, image, sshKeys: [KEY], metadata: meta, host: 'local', diskRef: disk });
    expect(back).toMatchObject({ id: vm.id, power_state: 'running', metadata: meta });
    expect(virsh(['domblklist', `vmplane-${vm.id}`, '--details'])).toMatch(new RegExp(`disk\\s+vda\\s+${disk.volume}`));
    expect(virsh(['vol-path', '--pool', POOL, disk.volume]).trim()).toBe(diskPath);
    await waitFor('the guest line after unshelve', GUEST_WAIT_MS, async () => (await client.consoleTail(vm.id)).includes(readyLine(meta.vmId)));

    const deleteStarted = Date.now();
    expect(await client.deleteVm(vm.id)).toBe(true);
    process.stdout.write(`libvirt tier: deleteVm of a running VM ${Date.now() - deleteStarted} ms\n`);
    expect(virshOrNull(['dominfo', `vmplane-${vm.id}`])).toBeNull();
    expect(volumes().filter((v) => v.includes(vm.id))).toEqual([]);
    expect(await client.deleteVm(vm.id)).toBe(true);
  }, 600_000);

  it('resizes a shut-off VM by redefining it, and refuses while it runs', async () => {
    const meta = metadata();
    made.push(meta.vmId);
    const vm = await client.createVm({ name: 'resize-me', cpuCores: 1, memory: 256, diskSize: 1, image, metadata: meta });
    await expect(client.resizeVm(vm.id, undefined, { cpuCores: 2 })).rejects.toBeInstanceOf(InvalidVmStateError);
    await client.stopVm(vm.id, undefined, { force: true });
    const resized = await client.resizeVm(vm.id, undefined, { cpuCores: 2, memory: 384 });
    expect(resized).toMatchObject({ cpu_cores: 2, memory: 384, power_state: 'shut_off', metadata: meta });
    const info = virsh(['dominfo', `vmplane-${vm.id}`]);
    expect(info).toMatch(/^CPU\(s\):\s+2$/m);
    expect(info).toMatch(/^Max memory:\s+393216 KiB$/m);
    await client.deleteVm(vm.id);
  }, 300_000);

  it('lists only vmplane domains, tells installations apart, and never touches a foreign domain', async () => {
    // Fresh per run, so VMs another test (or an earlier run) left behind are told apart by their metadata.
    const INSTALLATION_A = `libvirt-tier-a-${randomUUID()}`;
    const INSTALLATION_B = `libvirt-tier-b-${randomUUID()}`;
    const a = metadata(INSTALLATION_A);
    const b = metadata(INSTALLATION_B);
    made.push(a.vmId, b.vmId);
    const foreignId = randomUUID();
    virsh(['define', foreignXml(foreignId)]);
    try {
      // No image: a blank disk is enough for a domain to exist; its firmware finds nothing to boot.
      await client.createVm({ name: 'a', cpuCores: 1, memory: 128, diskSize: 1, metadata: a, labels: ['x'] });
      await client.createVm({ name: 'b', cpuCores: 1, memory: 128, diskSize: 1, metadata: b });
      const listed = await client.listVms();
      const ours = listed.filter((vm) => vm.metadata && [INSTALLATION_A, INSTALLATION_B].includes(vm.metadata.installationId));
      expect(ours.map((vm) => [vm.metadata!.installationId, vm.id]).sort()).toEqual([[INSTALLATION_A, a.vmId], [INSTALLATION_B, b.vmId]].sort());
      expect(listed.some((vm) => vm.id === foreignId)).toBe(false);
      expect(ours.find((vm) => vm.id === a.vmId)).toMatchObject({ labels: ['x'], power_state: 'running', metadata: a });
      await expect(client.deleteVm(foreignId)).rejects.toBeInstanceOf(HypervisorCommandError);
      expect(virshOrNull(['dominfo', `vmplane-${foreignId}`])).not.toBeNull();
    } finally {
      virshOrNull(['undefine', `vmplane-${foreignId}`]);
      await client.deleteVm(a.vmId);
      await client.deleteVm(b.vmId);
    }
  }, 300_000);

  it('gives each image registration its own base volume: two installations with an image of one name never share its content', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vmplane-base-'));
    const [one, two] = [1, 2].map((mib) => {
      const path = join(dir, `shared-${mib}.raw`);
      writeFileSync(path, Buffer.alloc(mib * 1024 * 1024));
      return { id: randomUUID(), name: 'shared-name', path, format: 'raw' as const };
    });
    const [a, b] = [metadata(), metadata()];
    made.push(a.vmId, b.vmId);
    const bases = [one, two].map((img) => `vmplane-image-shared-name-${img.id}`);
    try {
      await client.createVm({ name: 'a', cpuCores: 1, memory: 128, diskSize: 1, image: one, metadata: a });
      await client.createVm({ name: 'b', cpuCores: 1, memory: 128, diskSize: 1, image: two, metadata: b });
      expect(volumes()).toEqual(expect.arrayContaining(bases));
      const capacity = (volume: string) => Number(/Capacity:\s+([\d.]+) MiB/.exec(virsh(['vol-info', '--pool', POOL, volume]))?.[1]);
      expect(bases.map(capacity)).toEqual([1, 2]);
    } finally {
      await client.deleteVm(a.vmId);
      await client.deleteVm(b.vmId);
      for (const volume of bases) virshOrNull(['vol-delete', '--pool', POOL, volume]);
    }
  }, 300_000);

  it('names a host that does not answer, and leaves nothing behind', async () => {
    const meta = metadata();
    const before = volumes();
    const dead = { host: 'gpu-17', uri: 'qemu+tcp://127.0.0.1:1/system' };
    const error = await client.createVm({ name: 'nowhere', cpuCores: 1, memory: 128, diskSize: 1, image, sshKeys: [KEY], metadata: meta, ...dead }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostUnreachableError);
    expect((error as HostUnreachableError).host).toBe('gpu-17');
    expect((error as Error).message).toMatch(/^Host gpu-17 \(qemu\+tcp:\/\/127\.0\.0\.1:1\/system\) did not answer: .*Connection refused/);
    expect(virshOrNull(['dominfo', `vmplane-${meta.vmId}`])).toBeNull();
    expect(volumes()).toEqual(before);

    await expect(client.listVms([{ host: null, uri: null }, dead])).rejects.toBeInstanceOf(HostUnreachableError);
    const inventory = await client.inventory([{ host: 'local', uri: null }, dead]);
    expect(inventory.unreachable).toEqual([{ target: dead, error: expect.stringContaining('Host gpu-17') }]);
    await expect(client.getVm(meta.vmId, dead)).rejects.toBeInstanceOf(HostUnreachableError);
    await expect(client.deleteVm(meta.vmId, { host: 'ssh-host', uri: 'qemu+ssh://nobody@127.0.0.1:1/system' })).rejects.toThrow(/^Host ssh-host .*did not answer/);
  }, 120_000);

  it('defines a GPU passthrough VM, which this host cannot start without VFIO, and undoes it all', async () => {
    const meta = metadata();
    const before = volumes();
    const error = await client
      .createVm({ name: 'gpu', cpuCores: 1, memory: 128, diskSize: 1, image, metadata: meta, gpuDevices: [{ uuid: 'GPU-x', pciAddress: '0000:00:06.0', numaNode: 0 }] })
      .catch((e: unknown) => e);
    // A real GPU host gets past this point; here there is no IOMMU (see docs/libvirt.md).
    expect(error).toBeInstanceOf(HypervisorCommandError);
    expect((error as Error).message).toMatch(/virsh start: .*(passthrough of host PCI devices|PCI device|vfio|IOMMU)/i);
    expect(virshOrNull(['dominfo', `vmplane-${meta.vmId}`])).toBeNull();
    expect(volumes()).toEqual(before);
  }, 120_000);

  it('moves a shelved disk to another pool through libvirt volume streams', async () => {
    const meta = metadata();
    made.push(meta.vmId);
    // The same daemon under a second URI and a second pool stands in for a second host.
    const other = new LibvirtClient({ pool: `${POOL}-b` });
    other.authenticate();
    const vm = await client.createVm({ name: 'mover', cpuCores: 1, memory: 128, diskSize: 1, metadata: meta });
    const disk = await client.shelveVm(vm.id, undefined, { force: true });
    const moved = await other.unshelveVm({ name: 'mover', cpuCores: 1, memory: 128, diskSize: 1, metadata: meta, diskRef: disk, host: 'second', uri: 'qemu+unix:///system' });
    expect(moved).toMatchObject({ id: vm.id, host: 'second', power_state: 'running' });
    expect(volumes()).not.toContain(disk.volume);
    expect(volumes(`${POOL}-b`)).toContain(disk.volume);
    expect(virsh(['vol-info', '--pool', `${POOL}-b`, disk.volume])).toMatch(/Capacity:\s+1\.00 GiB/);
    await other.deleteVm(vm.id, { host: 'second', uri: 'qemu+unix:///system' });
    expect(volumes(`${POOL}-b`)).toEqual([]);
  }, 300_000);

  const runs = Number(process.env.LIBVIRT_MEASURE_RUNS ?? 0);
  (runs > 0 ? it : it.skip)(`measures createVm, the guest's line and deleteVm over LIBVIRT_MEASURE_RUNS runs`, async () => {
    const create: number[] = [];
    const line: number[] = [];
    const remove: number[] = [];
    for (let i = 0; i < runs; i++) {
      const meta = metadata();
      made.push(meta.vmId);
      const t0 = Date.now();
      const vm = await client.createVm({ name: `measure-${i}`, cpuCores: 1, memory: 256, diskSize: 1, image, sshKeys: [KEY], metadata: meta });
      create.push(Date.now() - t0);
      await waitFor('the guest line', GUEST_WAIT_MS, async () => (await client.consoleTail(vm.id)).includes(readyLine(meta.vmId)));
      line.push(Date.now() - t0);
      const t1 = Date.now();
      await client.deleteVm(vm.id);
      remove.push(Date.now() - t1);
    }
    process.stdout.write(
      `libvirt tier, ${runs} runs: createVm median ${median(create)} ms [${create.join(', ')}]; ` +
        `create to guest line median ${median(line)} ms [${line.join(', ')}]; deleteVm median ${median(remove)} ms [${remove.join(', ')}]\n`,
    );
  }, 1_800_000);
});

/** A domain vmplane did not make, though its name looks like one of ours: it has no vmplane metadata. */
function foreignXml(id: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'foreign-')), 'domain.xml');
  writeFileSync(file, `<domain type='qemu'><name>vmplane-${id}</name><uuid>${id}</uuid><memory unit='MiB'>64</memory><os><type arch='x86_64' machine='pc'>hvm</type></os></domain>`);
  return file;
}
