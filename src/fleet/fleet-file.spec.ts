import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FleetFileError, readFleetFile } from './fleet-file';

const HOST = { name: 'gpu-17', region: 'lab', cpu_cores: 8, memory_mib: 16384, disk_gib: 100 };

function fleetFile(hosts: object[]): string {
  const path = join(mkdtempSync(join(tmpdir(), 'fleet-')), 'fleet.json');
  writeFileSync(path, JSON.stringify({ hosts }));
  return path;
}

describe(readFleetFile.name, () => {
  it('takes a host’s hypervisor_uri, and leaves it out when absent', () => {
    const [withUri, without] = readFleetFile(fleetFile([{ ...HOST, hypervisor_uri: 'qemu+ssh://ops@gpu-17/system' }, { ...HOST, name: 'gpu-18' }]));
    expect(withUri.hypervisor_uri).toBe('qemu+ssh://ops@gpu-17/system');
    expect(without.hypervisor_uri).toBeUndefined();
  });

  it('refuses a hypervisor_uri that is not a libvirt URI, naming the host and the field', () => {
    const path = fleetFile([HOST, { ...HOST, name: 'gpu-18', hypervisor_uri: 'qemu:///system --connect evil' }]);
    expect(() => readFleetFile(path)).toThrow(FleetFileError);
    expect(() => readFleetFile(path)).toThrow(/hosts\[1\]\.hypervisor_uri must be a libvirt URI/);
  });
});
