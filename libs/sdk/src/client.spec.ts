import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Client } from './client';
import { AuthenticationError, DeviceBusyError, InvalidVmSpecError, NoResourcesAvailableError } from './errors';

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
});
