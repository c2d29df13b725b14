import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDomainXml, buildMdevXml, type DomainGpu, type DomainSpec } from '../../libs/sdk/src/libvirt/domain-xml';
import { parseNvidiaSmiXml } from '../../src/fleet/domain/nvidia-smi-parser';
import { describeLibvirt } from './support/libvirt';

/** libvirt's own schema check: `virt-xml-validate FILE SCHEMA`; resolves with its exit code and what it printed. */
function validate(xml: string, schema: 'domain' | 'nodedev'): Promise<{ code: number; output: string }> {
  const file = join(mkdtempSync(join(tmpdir(), 'vmplane-xml-')), `${schema}.xml`);
  writeFileSync(file, xml);
  return new Promise((resolve) =>
    execFile('virt-xml-validate', [file, schema], { timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` }),
    ),
  );
}

/**
 * The one real H200 (test/fixtures/nvidia-smi/h200-passthrough.xml) is GPU 0.
 * The other seven are INVENTED, in the same style (one PCI device per slot,
 * 00:07.0 … 00:0d.0), because no 8-GPU capture exists. NUMA node 0 and CPUs
 * 0-15 are what `nvidia-smi topo -m` printed on that host
 * (../shared/fixtures/nvidia-smi/h200-topo.txt).
 */
function h200Gpus(): DomainGpu[] {
  const [real] = parseNvidiaSmiXml(readFileSync(join(__dirname, '..', 'fixtures', 'nvidia-smi', 'h200-passthrough.xml'), 'utf8'));
  const invented = [7, 8, 9, 10, 11, 12, 13].map((slot, i) => ({
    uuid: `GPU-00000000-0000-4000-8000-00000000000${i + 1}`,
    pciAddress: `00000000:00:${slot.toString(16).padStart(2, '0')}.0`,
    numaNode: 0,
  }));
  return [{ uuid: real.uuid, pciAddress: real.pciAddress, numaNode: 0 }, ...invented];
}

const baseSpec = (gpus: DomainGpu[]): DomainSpec => ({
  id: '0190a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6b',
  name: 'trainer <8×H200> & "friends"',
  domainType: 'kvm',
  machine: 'q35',
  cpuCores: 16,
  memoryMib: 262_144,
  diskGib: 500,
  publicIp: null,
  labels: ['team=ml', 'vmplane.vm-id=0190a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6b'],
  host: 'gpu-17',
  createdAt: '2026-11-30T12:00:00.000Z',
  metadata: { installationId: 'inst-1', vmId: '0190a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6b', ownerId: 'user-1' },
  image: 'ubuntu-24.04-cuda',
  pool: 'vmplane',
  diskVolume: 'vmplane-0190a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6b-disk.qcow2',
  seedVolume: 'vmplane-0190a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6b-seed.iso',
  consoleLog: '/var/lib/libvirt/images/vmplane/vmplane-0190a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6b-console.log',
  network: 'default',
  gpus,
  numa: { node: 0, cpus: Array.from({ length: 16 }, (_, i) => i) },
});

describeLibvirt("libvirt's schema accepts the XML vmplane builds", () => {
  it('an 8-GPU passthrough VM on the H200 host, pinned to the GPUs\' NUMA node', async () => {
    const xml = buildDomainXml(baseSpec(h200Gpus()));
    expect(xml.match(/<hostdev mode="subsystem" type="pci" managed="yes">/g)).toHaveLength(8);
    expect(xml).toContain('<address domain="0x0000" bus="0x00" slot="0x06" function="0x0"/>');
    expect(xml).toContain('<vcpu placement="static" cpuset="0-15">16</vcpu>');
    expect(xml).toContain('<memory mode="strict" nodeset="0"/>');
    expect(await validate(xml, 'domain')).toEqual({ code: 0, output: expect.stringContaining('validates') });
  });

  it('a VM with MIG-backed vGPUs as mdev hostdevs, and the mdev XML for the node-device API', async () => {
    const gpus: DomainGpu[] = h200Gpus()
      .slice(0, 2)
      .map((g, i) => ({ ...g, mdevType: 'nvidia-1061', mdevUuid: `6f1c2b3a-0d4e-4f5a-8b6c-7d8e9f0a1b2${i}` }));
    const xml = buildDomainXml(baseSpec(gpus));
    expect(xml).toContain('<hostdev mode="subsystem" type="mdev" model="vfio-pci" managed="no">');
    expect(await validate(xml, 'domain')).toMatchObject({ code: 0 });
    const mdev = buildMdevXml(gpus[0]);
    expect(mdev).toContain('<parent>pci_0000_00_06_0</parent>');
    expect(await validate(mdev, 'nodedev')).toEqual({ code: 0, output: expect.stringContaining('validates') });
  });

  it('a small VM without GPUs (the shape the lifecycle tests boot)', async () => {
    const xml = buildDomainXml({ ...baseSpec([]), domainType: 'qemu', machine: 'pc', numa: null });
    expect(xml).not.toContain('<cpu');
    expect(xml).toContain('<target dev="hdc" bus="ide"/>');
    expect(await validate(xml, 'domain')).toMatchObject({ code: 0 });
  });

  it('the schema check is real: it refuses a broken document', async () => {
    const broken = buildDomainXml(baseSpec([])).replace('<on_crash>destroy</on_crash>', '<on_crash>explode</on_crash>');
    expect((await validate(broken, 'domain')).code).not.toBe(0);
  });
});
