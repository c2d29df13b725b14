import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import { InvalidVmSpecError } from '../errors';
import { type GpuDevice, type VmMetadata, parsePciAddress } from '../virtual-machine';

/** The namespace of vmplane's element in a domain's `<metadata>`; a domain without it is never touched. */
export const VMPLANE_XMLNS = 'https://vmplane.dev/xmlns/libvirt/domain/1';
export const DOMAIN_PREFIX = 'vmplane-';

/** A GPU as the domain holds it: a mediated device also has the UUID it was created with. */
export interface DomainGpu extends GpuDevice {
  mdevUuid?: string | null;
}

/** Everything a vmplane domain is made from; the metadata holds all of it, so a resize can rebuild the XML. */
export interface DomainSpec {
  id: string;
  name: string;
  domainType: 'kvm' | 'qemu';
  machine: 'pc' | 'q35';
  cpuCores: number;
  memoryMib: number;
  diskGib: number;
  publicIp: string | null;
  labels: string[];
  host: string | null;
  createdAt: string;
  metadata: VmMetadata | null;
  image: string | null;
  pool: string;
  diskVolume: string;
  seedVolume: string | null;
  consoleLog: string;
  network: string;
  gpus: DomainGpu[];
  /** Pin vCPUs and memory to this host NUMA node; cpus null: memory only. */
  numa: { node: number; cpus: number[] | null } | null;
}

/** What a domain's XML says: its spec when it is a vmplane domain (null otherwise). */
export interface ParsedDomain {
  uuid: string;
  name: string;
  spec: DomainSpec | null;
}

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', format: true, suppressEmptyNode: true });
const ARRAYS = new Set(['label', 'gpu', 'hostdev', 'disk', 'cell', 'cpu']);
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: false,
  parseTagValue: false,
  parseAttributeValue: false,
  isArray: (name) => ARRAYS.has(name.replace(/^vmplane:/, '')),
});

/** Characters XML 1.0 cannot carry at all, even escaped. */
const NOT_XML = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

function xmlSafe(field: string, value: string): string {
  if (NOT_XML.test(value)) throw new InvalidVmSpecError(`${field} contains a control character that XML cannot carry`);
  return value;
}

/** `0-3,8` for a list of CPU ids. */
export function cpuset(cpus: number[]): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  const ranges: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    ranges.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return ranges.join(',');
}

function hex(value: number, width: number): string {
  return `0x${value.toString(16).padStart(width, '0')}`;
}

function hostdev(gpu: DomainGpu, field: string): object {
  if (gpu.mdevType) {
    if (!gpu.mdevUuid) throw new InvalidVmSpecError(`${field}: a mediated device needs its UUID before the domain is defined`);
    return { '@_mode': 'subsystem', '@_type': 'mdev', '@_model': 'vfio-pci', '@_managed': 'no', source: { address: { '@_uuid': gpu.mdevUuid } } };
  }
  const pci = parsePciAddress(gpu.pciAddress);
  if (!pci) throw new InvalidVmSpecError(`${field}.pciAddress is not a PCI address`);
  return {
    '@_mode': 'subsystem',
    '@_type': 'pci',
    '@_managed': 'yes',
    source: { address: { '@_domain': hex(pci.domain, 4), '@_bus': hex(pci.bus, 2), '@_slot': hex(pci.slot, 2), '@_function': hex(pci.fn, 1) } },
  };
}

function metadataElement(spec: DomainSpec): object {
  const text = (field: string, value: string | null | undefined) => (value == null ? undefined : xmlSafe(field, value));
  return {
    '@_xmlns:vmplane': VMPLANE_XMLNS,
    'vmplane:installation': text('metadata.installationId', spec.metadata?.installationId),
    'vmplane:vm-id': text('metadata.vmId', spec.metadata?.vmId),
    'vmplane:owner': text('metadata.ownerId', spec.metadata?.ownerId),
    'vmplane:name': xmlSafe('name', spec.name),
    'vmplane:host': text('host', spec.host),
    'vmplane:created-at': spec.createdAt,
    'vmplane:disk-gib': spec.diskGib,
    'vmplane:public-ip': spec.publicIp ?? undefined,
    'vmplane:image': spec.image ?? undefined,
    'vmplane:machine': spec.machine,
    'vmplane:seed': spec.seedVolume ?? undefined,
    'vmplane:labels': { 'vmplane:label': spec.labels.map((l, i) => xmlSafe(`labels[${i}]`, l)) },
    'vmplane:gpus': {
      'vmplane:gpu': spec.gpus.map((g, i) => ({
        '@_uuid': xmlSafe(`gpuDevices[${i}].uuid`, g.uuid),
        '@_pci': g.pciAddress,
        '@_numa': g.numaNode ?? undefined,
        '@_mdev-type': g.mdevType ?? undefined,
        '@_mdev-uuid': g.mdevUuid ?? undefined,
      })),
    },
  };
}

/** The domain XML of a vmplane VM, built with an XML builder: every value is escaped, none is pasted. */
export function buildDomainXml(spec: DomainSpec): string {
  const disks: object[] = [
    {
      '@_type': 'volume',
      '@_device': 'disk',
      driver: { '@_name': 'qemu', '@_type': 'qcow2' },
      source: { '@_pool': spec.pool, '@_volume': spec.diskVolume },
      target: { '@_dev': 'vda', '@_bus': 'virtio' },
    },
  ];
  if (spec.seedVolume) {
    // The i440FX machine has IDE; on q35 a SATA cdrom needs AHCI, which small cloud kernels lack, so the seed is a read-only virtio disk there.
    const target = spec.machine === 'pc' ? { '@_dev': 'hdc', '@_bus': 'ide' } : { '@_dev': 'vdb', '@_bus': 'virtio' };
    disks.push({
      '@_type': 'volume',
      '@_device': spec.machine === 'pc' ? 'cdrom' : 'disk',
      driver: { '@_name': 'qemu', '@_type': 'raw' },
      source: { '@_pool': spec.pool, '@_volume': spec.seedVolume },
      target,
      readonly: '',
    });
  }
  const domain = {
    '@_type': spec.domainType,
    name: `${DOMAIN_PREFIX}${spec.id}`,
    uuid: spec.id,
    metadata: { 'vmplane:vm': metadataElement(spec) },
    memory: { '@_unit': 'MiB', '#text': spec.memoryMib },
    vcpu: { '@_placement': 'static', '@_cpuset': spec.numa?.cpus?.length ? cpuset(spec.numa.cpus) : undefined, '#text': spec.cpuCores },
    numatune: spec.numa ? { memory: { '@_mode': 'strict', '@_nodeset': String(spec.numa.node) } } : undefined,
    os: { type: { '@_arch': 'x86_64', '@_machine': spec.machine, '#text': 'hvm' }, boot: { '@_dev': 'hd' } },
    features: { acpi: '', apic: '' },
    cpu: spec.domainType === 'kvm' ? { '@_mode': 'host-passthrough', '@_check': 'none' } : undefined,
    clock: { '@_offset': 'utc' },
    on_poweroff: 'destroy',
    on_reboot: 'restart',
    on_crash: 'destroy',
    devices: {
      disk: disks,
      interface: { '@_type': 'network', source: { '@_network': spec.network }, model: { '@_type': 'virtio' } },
      serial: { '@_type': 'pty', log: { '@_file': spec.consoleLog, '@_append': 'off' }, target: { '@_port': '0' } },
      console: { '@_type': 'pty', target: { '@_type': 'serial', '@_port': '0' } },
      hostdev: spec.gpus.map((g, i) => hostdev(g, `gpuDevices[${i}]`)),
    },
  };
  return builder.build({ domain }) as string;
}

/** The mediated-device XML for libvirt's node-device API (`virsh nodedev-create`). */
export function buildMdevXml(gpu: DomainGpu): string {
  const pci = parsePciAddress(gpu.pciAddress);
  if (!pci || !gpu.mdevType || !gpu.mdevUuid) throw new InvalidVmSpecError('a mediated device needs a PCI address, a type and a UUID');
  return builder.build({
    device: {
      // libvirt names the device itself; the schema wants a name all the same.
      name: `mdev_${gpu.mdevUuid.replace(/-/g, '_')}`,
      parent: mdevParentName(gpu.pciAddress),
      capability: { '@_type': 'mdev', type: { '@_id': gpu.mdevType }, uuid: gpu.mdevUuid },
    },
  }) as string;
}

/** libvirt's node-device name of a PCI device: `pci_0000_18_00_0`. */
export function mdevParentName(pciAddress: string): string {
  const pci = parsePciAddress(pciAddress);
  if (!pci) throw new InvalidVmSpecError(`"${pciAddress}" is not a PCI address`);
  const h = (v: number, w: number) => v.toString(16).padStart(w, '0');
  return `pci_${h(pci.domain, 4)}_${h(pci.bus, 2)}_${h(pci.slot, 2)}_${pci.fn}`;
}

function str(value: unknown): string | null {
  if (value == null) return null;
  if (typeof value === 'object') return str((value as Record<string, unknown>)['#text']);
  return String(value);
}

/** Reads a domain's XML back; the spec is null for a domain that vmplane did not make. */
export function parseDomainXml(xml: string): ParsedDomain {
  const doc = parser.parse(xml) as { domain?: Record<string, unknown> };
  const domain = doc.domain;
  if (!domain) throw new Error('not a domain XML document');
  const uuid = str(domain.uuid) ?? '';
  const name = str(domain.name) ?? '';
  const meta = (domain.metadata as Record<string, unknown> | undefined)?.['vmplane:vm'] as Record<string, unknown> | undefined;
  if (!meta || meta['@_xmlns:vmplane'] !== VMPLANE_XMLNS || !name.startsWith(DOMAIN_PREFIX)) return { uuid, name, spec: null };

  const devices = (domain.devices ?? {}) as Record<string, unknown>;
  const disks = (devices.disk ?? []) as Record<string, Record<string, string>>[];
  const mainDisk = disks.find((d) => d.target?.['@_dev'] === 'vda');
  const serial = devices.serial as Record<string, Record<string, string>> | undefined;
  const iface = devices.interface as Record<string, Record<string, string>> | undefined;
  const vcpu = domain.vcpu as Record<string, string> | string;
  const numatune = domain.numatune as Record<string, Record<string, string>> | undefined;
  const installationId = str(meta['vmplane:installation']);
  const vmId = str(meta['vmplane:vm-id']);
  const ownerId = str(meta['vmplane:owner']);
  const gpus = (((meta['vmplane:gpus'] as Record<string, unknown> | undefined)?.['vmplane:gpu'] ?? []) as Record<string, string>[]).map(
    (g): DomainGpu => ({
      uuid: g['@_uuid'],
      pciAddress: g['@_pci'],
      numaNode: g['@_numa'] != null ? Number(g['@_numa']) : null,
      mdevType: g['@_mdev-type'] ?? null,
      mdevUuid: g['@_mdev-uuid'] ?? null,
    }),
  );
  const cpusetText = typeof vcpu === 'object' ? vcpu['@_cpuset'] : undefined;
  const spec: DomainSpec = {
    id: uuid,
    name: str(meta['vmplane:name']) ?? name,
    domainType: domain['@_type'] === 'kvm' ? 'kvm' : 'qemu',
    machine: str(meta['vmplane:machine']) === 'q35' ? 'q35' : 'pc',
    cpuCores: Number(str(vcpu)),
    memoryMib: toMib(domain.memory as Record<string, string>),
    diskGib: Number(str(meta['vmplane:disk-gib']) ?? 0),
    publicIp: str(meta['vmplane:public-ip']),
    labels: (((meta['vmplane:labels'] as Record<string, unknown> | undefined)?.['vmplane:label'] ?? []) as unknown[]).map((l) => str(l) ?? ''),
    host: str(meta['vmplane:host']),
    createdAt: str(meta['vmplane:created-at']) ?? '',
    metadata: installationId && vmId && ownerId ? { installationId, vmId, ownerId } : null,
    image: str(meta['vmplane:image']),
    pool: mainDisk?.source?.['@_pool'] ?? '',
    diskVolume: mainDisk?.source?.['@_volume'] ?? '',
    seedVolume: str(meta['vmplane:seed']),
    consoleLog: serial?.log?.['@_file'] ?? '',
    network: iface?.source?.['@_network'] ?? '',
    gpus,
    numa: numatune?.memory ? { node: Number(numatune.memory['@_nodeset']), cpus: cpusetText ? parseCpuset(cpusetText) : null } : null,
  };
  return { uuid, name, spec };
}

function toMib(memory: Record<string, string> | string): number {
  const value = Number(str(memory));
  const unit = typeof memory === 'object' ? (memory['@_unit'] ?? 'KiB') : 'KiB';
  const factor: Record<string, number> = { KiB: 1 / 1024, k: 1 / 1024, MiB: 1, M: 1, GiB: 1024, G: 1024, b: 1 / 1048576, bytes: 1 / 1048576 };
  return Math.round(value * (factor[unit] ?? 1 / 1024));
}

export function parseCpuset(text: string): number[] {
  const cpus: number[] = [];
  for (const part of text.split(',')) {
    const [a, b] = part.split('-').map(Number);
    for (let c = a; c <= (b ?? a); c++) cpus.push(c);
  }
  return cpus;
}

/**
 * What `virsh capabilities` says that matters here: whether KVM is usable, and each NUMA cell's CPUs.
 *
 * libvirt offers a `kvm` domain type whenever /dev/kvm can be opened. That is not enough: a cloud VM may expose
 * /dev/kvm without hardware virtualisation (no vmx/svm in its CPU flags), and a KVM guest there dies in its BIOS
 * with "emulation failure", left paused. So on an x86 host whose CPU libvirt describes, KVM also needs vmx
 * (Intel) or svm (AMD) among the host CPU's features.
 */
export interface HostCapabilities {
  kvm: boolean;
  cells: Map<number, number[]>;
}

export function parseCapabilities(xml: string): HostCapabilities {
  const doc = parser.parse(xml) as { capabilities?: Record<string, unknown> };
  const caps = doc.capabilities ?? {};
  const guests = ([] as Record<string, unknown>[]).concat((caps.guest ?? []) as Record<string, unknown>[]);
  let kvm = false;
  for (const guest of guests) {
    const arch = guest.arch as Record<string, unknown> | undefined;
    if (!arch || arch['@_name'] !== 'x86_64') continue;
    const domains = ([] as Record<string, string>[]).concat((arch.domain ?? []) as Record<string, string>[]);
    if (domains.some((d) => d['@_type'] === 'kvm')) kvm = true;
  }
  // `cpu` parses as a list (a NUMA cell's CPUs share the name); the host has one.
  const hostCpu = ([] as Record<string, unknown>[]).concat(((caps.host as Record<string, unknown> | undefined)?.cpu ?? []) as Record<string, unknown>[])[0];
  if (kvm && hostCpu && hostCpu.arch === 'x86_64') {
    const features = ([] as Record<string, string>[]).concat((hostCpu.feature ?? []) as Record<string, string>[]);
    kvm = features.some((f) => f['@_name'] === 'vmx' || f['@_name'] === 'svm');
  }
  const cells = new Map<number, number[]>();
  const topology = (caps.host as Record<string, unknown> | undefined)?.topology as Record<string, unknown> | undefined;
  const cellList = ((topology?.cells as Record<string, unknown> | undefined)?.cell ?? []) as Record<string, unknown>[];
  for (const cell of cellList) {
    const cpus = ((cell.cpus as Record<string, unknown> | undefined)?.cpu ?? []) as Record<string, string>[];
    cells.set(Number(cell['@_id']), cpus.map((c) => Number(c['@_id'])));
  }
  return { kvm, cells };
}
