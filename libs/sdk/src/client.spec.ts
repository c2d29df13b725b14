import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Client } from './client';
import {
  AuthenticationError,
  DeviceBusyError,
  InvalidVmSpecError,
  InvalidVmStateError,
  NoResourcesAvailableError,
  TransientHypervisorError,
  VmNotFoundError,
} from './errors';

const spec = { name: 'vm', cpuCores: 2, memory: 4096, diskSize: 50 };

describe(Client.name, () => {
  it('refuses to authenticate without an API key, as the original did', () => {
    expect(() => new Client().authenticate()).toThrow(new AuthenticationError('Invalid API key'));
    expect(() => new Client('').authenticate()).toThrow(AuthenticationError);
  });

  it('refuses every call until authenticated', async () => {
    const client = new Client('key', { failureRate: 0 });
    expect(client.authenticated).toBe(false);
    await expect(client.createVm(spec)).rejects.toThrow(new AuthenticationError('Not authenticated'));
    await expect(client.deleteVm('x')).rejects.toThrow(AuthenticationError);
    await expect(client.listVms()).rejects.toThrow(AuthenticationError);
    expect(client.authenticate()).toBe(true);
    expect(client.authenticated).toBe(true);
  });

  it('creates a VM with a fresh UUID v4 and the given fields, labels defaulting to []', async () => {
    const client = new Client('key', { failureRate: 0 });
    client.authenticate();
    const vm = await client.createVm({ ...spec, publicIp: '192.168.1.1' });
    expect(vm.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(vm).toMatchObject({ name: 'vm', cpu_cores: 2, memory: 4096, disk_size: 50, public_ip: '192.168.1.1', labels: [] });
    const other = await client.createVm(spec);
    expect(other.id).not.toBe(vm.id);
    expect(await client.getVm(vm.id)).toEqual(vm);
    expect((await client.listVms()).map((v) => v.id).sort()).toEqual([vm.id, other.id].sort());
  });

  it('rejects an invalid public IP', async () => {
    const client = new Client('key', { failureRate: 0 });
    client.authenticate();
    await expect(client.createVm({ ...spec, publicIp: '999.1.1.1' })).rejects.toThrow(InvalidVmSpecError);
  });

  it('deletes a VM and, like the original, returns true for an unknown id', async () => {
    const client = new Client('key', { failureRate: 0 });
    client.authenticate();
    const vm = await client.createVm(spec);
    expect(await client.deleteVm(vm.id)).toBe(true);
    expect(await client.getVm(vm.id)).toBeNull();
    expect(await client.deleteVm('00000000-0000-4000-8000-000000000000')).toBe(true);
  });

  it('fails about 1 in 100 creates by default, reproducibly with a seed', async () => {
    const outcomes = async () => {
      const client = new Client('key', { seed: 42 });
      client.authenticate();
      const results: boolean[] = [];
      for (let i = 0; i < 2000; i++) {
        results.push(await client.createVm(spec).then(() => true, (e) => {
          expect(e).toBeInstanceOf(NoResourcesAvailableError);
          expect((e as Error).message).toBe('No resources available to create a new virtual machine');
          return false;
        }));
      }
      return results;
    };
    const first = await outcomes();
    const failures = first.filter((ok) => !ok).length;
    expect(failures).toBeGreaterThan(5);
    expect(failures).toBeLessThan(45);
    expect(await outcomes()).toEqual(first);
  });

  it('refuses a device already attached to a live VM, and frees it on delete', async () => {
    const client = new Client('key', { failureRate: 0 });
    client.authenticate();
    const vm = await client.createVm({ ...spec, host: 'h1', gpus: ['gpu-a', 'gpu-b'] });
    await expect(client.createVm({ ...spec, host: 'h1', gpus: ['gpu-c', 'gpu-b'] })).rejects.toEqual(
      new DeviceBusyError(['gpu-b']),
    );
    await client.deleteVm(vm.id);
    await expect(client.createVm({ ...spec, host: 'h1', gpus: ['gpu-b'] })).resolves.toMatchObject({ gpus: ['gpu-b'] });
  });


  it('commits concurrent writes together without letting one device go to two VMs, or one failure undo the others', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'sdk-')), 'hv.sqlite');
    const client = new Client('key', { statePath: path, failureRate: 0 });
    client.authenticate();
    const doomed = await client.createVm({ ...spec, name: 'doomed' });
    // All of these are issued in one turn of the event loop, so they share a commit.
    const results = await Promise.allSettled([
      client.createVm({ ...spec, name: 'a', gpus: ['g0'] }),
      client.createVm({ ...spec, name: 'b', gpus: ['g0', 'g1'] }),
      client.createVm({ ...spec, name: 'c', gpus: ['g1'] }),
      client.deleteVm(doomed.id),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toEqual(new DeviceBusyError(['g0']));
    client.close();
    const raw = new Database(path, { readonly: true });
    expect(raw.prepare('SELECT name, gpus FROM vms ORDER BY name').all()).toEqual([
      { name: 'a', gpus: '["g0"]' },
      { name: 'c', gpus: '["g1"]' },
    ]);
    raw.close();
  });
  it('keeps its state in a SQLite file with one row per live VM, shared between clients', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'sdk-')), 'hv.sqlite');
    const a = new Client('key', { statePath: path, failureRate: 0 });
    const b = new Client('key', { statePath: path, failureRate: 0 });
    a.authenticate();
    b.authenticate();
    const vm = await a.createVm({ ...spec, labels: ['x'], gpus: ['g0'] });
    await expect(b.createVm({ ...spec, gpus: ['g0'] })).rejects.toThrow(DeviceBusyError);
    const raw = new Database(path, { readonly: true });
    expect(raw.prepare('SELECT id, gpus, labels FROM vms').all()).toEqual([{ id: vm.id, gpus: '["g0"]', labels: '["x"]' }]);
    await b.deleteVm(vm.id);
    expect(raw.prepare('SELECT count(*) AS n FROM vms').get()).toEqual({ n: 0 });
    raw.close();
    a.close();
    b.close();
  });

  it('waits the configured latency', async () => {
    const client = new Client('key', { failureRate: 0, latencyMs: 30 });
    client.authenticate();
    const started = Date.now();
    await client.createVm(spec);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
  });

  describe('the lifecycle verbs', () => {
    const metadata = { installationId: 'inst-a', vmId: '0190a000-0000-7000-8000-000000000001', ownerId: 'user-1' };
    const gpu = (uuid: string, bus: string) => ({ uuid, pciAddress: `0000:${bus}:00.0` });
    let client: Client;
    beforeEach(() => {
      client = new Client('key', { failureRate: 0 });
      client.authenticate();
    });
    afterEach(() => client.close());

    it('creates a running VM carrying its metadata, and prints a boot log that names it and its keys', async () => {
      const vm = await client.createVm({ ...spec, metadata, sshKeys: ['ssh-ed25519 AAAAC3Nz alice@laptop', 'ssh-rsa AAAAB3Nz ci key'] });
      expect(vm).toMatchObject({ power_state: 'running', metadata });
      const log = await client.consoleTail(vm.id);
      expect(log).toContain(`(${vm.id})`);
      expect(log).toContain(`vmplane-guest ready instance-id=${metadata.vmId} keys=alice@laptop,ci key`);
      expect(await client.consoleTail(vm.id, undefined, 20)).toHaveLength(20);
      await expect(client.consoleTail('nope')).rejects.toThrow(VmNotFoundError);
    });

    it('stops and starts a VM, each idempotent, and refuses a reboot of a stopped one', async () => {
      const vm = await client.createVm(spec);
      expect(await client.stopVm(vm.id, undefined, { timeoutSeconds: 1 })).toMatchObject({ id: vm.id, power_state: 'shut_off' });
      expect((await client.stopVm(vm.id)).power_state).toBe('shut_off');
      expect(await client.consoleTail(vm.id)).toMatch(/Power down\n$/);
      await expect(client.rebootVm(vm.id)).rejects.toEqual(new InvalidVmStateError(vm.id, 'shut_off', 'reboot'));
      expect((await client.startVm(vm.id)).power_state).toBe('running');
      expect((await client.startVm(vm.id)).power_state).toBe('running');
      expect((await client.rebootVm(vm.id, undefined, { hard: true })).power_state).toBe('running');
      await expect(client.startVm('0190a000-0000-7000-8000-00000000dead')).rejects.toThrow(VmNotFoundError);
    });

    it('resizes only a shut-off VM, and refuses a GPU attached to another VM', async () => {
      const other = await client.createVm({ ...spec, gpuDevices: [gpu('gpu-b', '19')] });
      const vm = await client.createVm({ ...spec, gpuDevices: [gpu('gpu-a', '18')] });
      await expect(client.resizeVm(vm.id, undefined, { cpuCores: 4 })).rejects.toThrow(InvalidVmStateError);
      await client.stopVm(vm.id);
      await expect(client.resizeVm(vm.id, undefined, { gpuDevices: [gpu('gpu-a', '18'), gpu('gpu-b', '19')] })).rejects.toEqual(
        new DeviceBusyError(['gpu-b']),
      );
      const resized = await client.resizeVm(vm.id, undefined, { cpuCores: 8, memory: 8192, gpuDevices: [gpu('gpu-a', '18'), gpu('gpu-c', '1a')] });
      expect(resized).toMatchObject({ cpu_cores: 8, memory: 8192, gpus: ['gpu-a', 'gpu-c'], power_state: 'shut_off' });
      expect((await client.getVm(other.id))?.gpus).toEqual(['gpu-b']);
    });

    it('shelves a VM (freeing its GPUs, keeping its disk) and unshelves it elsewhere under its old id', async () => {
      const vm = await client.createVm({ ...spec, host: 'h1', metadata, gpuDevices: [gpu('gpu-a', '18')] });
      const disk = await client.shelveVm(vm.id, { host: 'h1', uri: null });
      expect(disk).toEqual({ hypervisorId: vm.id, host: 'h1', uri: null, pool: null, volume: `sim-disk-${vm.id}`, sizeGib: 50 });
      expect(await client.getVm(vm.id)).toBeNull();
      expect(await client.shelveVm(vm.id)).toEqual(disk);
      // Its GPU is free while it is shelved.
      const squatter = await client.createVm({ ...spec, gpuDevices: [gpu('gpu-a', '18')] });
      await client.deleteVm(squatter.id);

      const back = await client.unshelveVm({ ...spec, host: 'h2', metadata, diskRef: disk, gpuDevices: [gpu('gpu-z', '3b')] });
      expect(back).toMatchObject({ id: vm.id, host: 'h2', gpus: ['gpu-z'], power_state: 'running', metadata });
      expect(await client.unshelveVm({ ...spec, diskRef: disk })).toMatchObject({ id: vm.id, host: 'h2' });
      expect((await client.listVms([{ host: 'h2', uri: null }])).map((v) => v.id)).toEqual([vm.id]);
      expect(await client.listVms([{ host: 'h1', uri: null }])).toEqual([]);
      expect(await client.inventory([{ host: 'h2', uri: null }])).toEqual({ vms: [back], unreachable: [] });
    });

    it('deleting a shelved VM removes its kept disk, so it cannot come back', async () => {
      const vm = await client.createVm(spec);
      const disk = await client.shelveVm(vm.id);
      expect(await client.deleteVm(vm.id)).toBe(true);
      await expect(client.unshelveVm({ ...spec, diskRef: disk })).rejects.toThrow(VmNotFoundError);
    });

    it('injects seeded failures into every verb: capacity for those that need it, transient for the others', async () => {
      const draws = async (seed: number) => {
        const c = new Client('key', { failureRate: 0.5, seed });
        c.authenticate();
        const vm = (await c.createVm(spec).catch(() => null)) ?? (await c.createVm(spec).catch(() => null)) ?? (await c.createVm(spec));
        const outcomes: string[] = [];
        for (let i = 0; i < 40; i++) {
          const verb = i % 2 === 0 ? c.stopVm(vm.id) : c.startVm(vm.id);
          outcomes.push(await verb.then((v) => v.power_state, (e: Error) => e.name));
        }
        c.close();
        return outcomes;
      };
      const first = await draws(7);
      expect(first).toContain('TransientHypervisorError');
      expect(first).toContain('running');
      expect(await draws(7)).toEqual(first);

      const failing = new Client('key', { failureRate: 1 });
      failing.authenticate();
      await expect(failing.unshelveVm({ ...spec, diskRef: { hypervisorId: 'x', host: null, uri: null, pool: null, volume: 'v', sizeGib: 1 } })).rejects.toThrow(
        NoResourcesAvailableError,
      );
      await expect(failing.shelveVm('x')).rejects.toThrow(TransientHypervisorError);
      failing.close();
    });

    it('bounds user data and SSH keys before doing any work', async () => {
      await expect(client.createVm({ ...spec, userData: 'x'.repeat(16 * 1024 + 1) })).rejects.toThrow(/userData is 16385 bytes; at most 16384/);
      await expect(client.createVm({ ...spec, sshKeys: ['ssh-ed25519 AAAA ok', 'not a key'] })).rejects.toThrow(/sshKeys\[1\]/);
      await expect(client.createVm({ ...spec, sshKeys: ['ssh-ed25519 AAAA a\nb'] })).rejects.toThrow(InvalidVmSpecError);
      await expect(client.createVm({ ...spec, gpuDevices: [{ uuid: 'g', pciAddress: 'bogus' }] })).rejects.toThrow(/gpuDevices\[0\].pciAddress/);
      await expect(client.createVm({ ...spec, image: { id: '01a2', name: '../etc', path: '/x', format: 'qcow2' } })).rejects.toThrow(/image.name/);
      await expect(client.createVm({ ...spec, image: { id: '../01a2', name: 'ok', path: '/x', format: 'qcow2' } })).rejects.toThrow(/image.id/);
    });
  });

  it('opens a state file written before power states and metadata existed, adding the columns', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'sdk-')), 'hv.sqlite');
    const old = new Database(path);
    old.exec(`CREATE TABLE vms (id TEXT PRIMARY KEY, name TEXT NOT NULL, cpu_cores INTEGER NOT NULL, memory INTEGER NOT NULL,
      disk_size INTEGER NOT NULL, public_ip TEXT, host TEXT, gpus TEXT NOT NULL DEFAULT '[]', labels TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL)`);
    old.prepare(`INSERT INTO vms (id, name, cpu_cores, memory, disk_size, created_at) VALUES ('old-vm', 'legacy', 1, 512, 10, '2026-01-01T00:00:00.000Z')`).run();
    old.close();
    const client = new Client('key', { statePath: path, failureRate: 0 });
    client.authenticate();
    expect(await client.getVm('old-vm')).toMatchObject({ name: 'legacy', power_state: 'running', metadata: null, gpus: [] });
    expect((await client.stopVm('old-vm')).power_state).toBe('shut_off');
    client.close();
    // A second open finds the columns there and changes nothing.
    const again = new Client('key', { statePath: path, failureRate: 0 });
    again.authenticate();
    expect((await again.getVm('old-vm'))?.power_state).toBe('shut_off');
    again.close();
  });
});
