import { InvalidVmSpecError } from '../errors';
import { buildDomainXml, cpuset, mdevParentName, parseCapabilities, parseCpuset, parseDomainXml, type DomainSpec } from './domain-xml';

const spec: DomainSpec = {
  id: '0190a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6b',
  name: 'a <b> & "c" \'d\'',
  domainType: 'qemu',
  machine: 'q35',
  cpuCores: 4,
  memoryMib: 8192,
  diskGib: 40,
  publicIp: '203.0.113.7',
  labels: ['x=<y>', 'vmplane.vm-id=0190a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6b'],
  host: 'gpu-1',
  createdAt: '2026-11-30T12:00:00.000Z',
  metadata: { installationId: 'inst', vmId: '0190a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6b', ownerId: 'owner' },
  image: 'ubuntu',
  pool: 'vmplane',
  diskVolume: 'vmplane-0190a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6b-disk.qcow2',
  seedVolume: 'vmplane-0190a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6b-seed.iso',
  consoleLog: '/pool/vmplane-0190a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6b-console.log',
  network: 'default',
  gpus: [
    { uuid: 'GPU-1', pciAddress: '00000000:18:00.0', numaNode: 1, mdevType: null, mdevUuid: null },
    { uuid: 'GPU-2', pciAddress: '0000:2a:00.0', numaNode: 1, mdevType: 'nvidia-1061', mdevUuid: '6f1c2b3a-0d4e-4f5a-8b6c-7d8e9f0a1b2c' },
  ],
  numa: { node: 1, cpus: [8, 9, 10, 11, 20] },
};

describe('domain XML', () => {
  it('reads back exactly the spec it was built from, escaping every value', () => {
    const xml = buildDomainXml(spec);
    expect(xml).toContain('<vmplane:name>a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;</vmplane:name>');
    expect(xml).toContain('<name>vmplane-0190a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6b</name>');
    expect(parseDomainXml(xml)).toEqual({ uuid: spec.id, name: `vmplane-${spec.id}`, spec });
  });

  it('puts the seed on IDE for the pc machine and on virtio for q35', () => {
    expect(buildDomainXml(spec)).toContain('<target dev="vdb" bus="virtio"/>');
    expect(buildDomainXml({ ...spec, machine: 'pc', gpus: [] })).toContain('<target dev="hdc" bus="ide"/>');
  });

  it('refuses text XML cannot carry, naming the field', () => {
    expect(() => buildDomainXml({ ...spec, labels: ['bell\u0007'] })).toThrow(new InvalidVmSpecError('labels[0] contains a control character that XML cannot carry'));
  });

  it('does not take a domain without vmplane metadata, or with another namespace, for one of ours', () => {
    const foreign = `<domain type='kvm'><name>vmplane-${spec.id}</name><uuid>${spec.id}</uuid><metadata><vmplane:vm xmlns:vmplane="https://example.com/not-ours"/></metadata></domain>`;
    expect(parseDomainXml(foreign)).toEqual({ uuid: spec.id, name: `vmplane-${spec.id}`, spec: null });
    expect(parseDomainXml(`<domain type='kvm'><name>web</name><uuid>${spec.id}</uuid></domain>`).spec).toBeNull();
  });

  it('writes CPU sets as ranges, and names PCI parents as libvirt does', () => {
    expect(cpuset([3, 0, 1, 2, 8, 10, 11])).toBe('0-3,8,10-11');
    expect(parseCpuset('0-3,8,10-11')).toEqual([0, 1, 2, 3, 8, 10, 11]);
    expect(mdevParentName('00000000:18:00.0')).toBe('pci_0000_18_00_0');
  });

  it('reads KVM and NUMA cells from virsh capabilities', () => {
    const caps = `<capabilities><host><topology><cells num='2'>
      <cell id='0'><cpus num='2'><cpu id='0'/><cpu id='1'/></cpus></cell>
      <cell id='1'><cpus num='1'><cpu id='2'/></cpus></cell></cells></topology></host>
      <guest><os_type>hvm</os_type><arch name='x86_64'><domain type='qemu'/><domain type='kvm'/></arch></guest>
      <guest><os_type>hvm</os_type><arch name='i686'><domain type='qemu'/></arch></guest></capabilities>`;
    expect(parseCapabilities(caps)).toEqual({ kvm: true, cells: new Map([[0, [0, 1]], [1, [2]]]) });
    expect(parseCapabilities(caps.replace("<domain type='kvm'/>", '')).kvm).toBe(false);
  });

  it('trusts KVM on an x86 host only when its CPU has vmx or svm (a cloud VM may open /dev/kvm without them)', () => {
    const withCpu = (features: string) =>
      `<capabilities><host><cpu><arch>x86_64</arch><model>Broadwell-noTSX-IBRS</model><vendor>Intel</vendor>${features}</cpu></host>
      <guest><os_type>hvm</os_type><arch name='x86_64'><domain type='qemu'/><domain type='kvm'/></arch></guest></capabilities>`;
    expect(parseCapabilities(withCpu("<feature name='hypervisor'/><feature name='avx512f'/>")).kvm).toBe(false);
    expect(parseCapabilities(withCpu("<feature name='vmx'/>")).kvm).toBe(true);
    expect(parseCapabilities(withCpu("<feature name='hypervisor'/><feature name='svm'/>")).kvm).toBe(true);
  });
});
