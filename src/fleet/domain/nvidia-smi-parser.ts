import { supportsMig, type GpuSharingMode } from './gpu-profiles';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { canonicalGpuModel } from './gpu-model';

export type MigMode = 'enabled' | 'disabled' | 'unsupported';

/**
 * gpu_virtualization_mode/virtualization_mode (NVML nvmlGpuVirtualizationMode_t):
 * bare metal, passed through to a VM, a vGPU seen from inside its VM, or
 * the hypervisor's GPU running the vGPU manager (in vGPU or vSGA mode).
 */
export type VirtualizationMode = 'none' | 'passthrough' | 'vgpu' | 'host-vgpu' | 'host-vsga';

/** gpu_virtualization_mode/host_vgpu_mode (nvmlHostVgpuMode_t): how a vGPU host exposes vGPUs. */
export type HostVgpuMode = 'sr-iov' | 'non-sr-iov';

export interface VgpuLicense {
  /** vgpu_software_licensed_product/licensed_product_name, e.g. "NVIDIA RTX Virtual Workstation". */
  product: string;
  /** license_status as printed, e.g. "Licensed (Expiry: 2026-7-7 16:1:44 GMT)" or "Unlicensed". */
  status: string;
}

export interface ParsedGpu {
  /** Position of the `<gpu>` element in the document, 0-based. */
  index: number;
  productName: string;
  memoryMib: number;
  pciAddress: string;
  uuid: string;
  /** mig_mode/current_mig. */
  migMode: MigMode;
  /** mig_mode/pending_mig: the mode after the next GPU reset; differs from migMode while a change waits. */
  migModePending: MigMode;
  /** Null when the driver does not say (N/A or no element, as in older drivers). */
  virtualizationMode: VirtualizationMode | null;
  hostVgpuMode: HostVgpuMode | null;
  /** gpu_virtualization_mode/vgpu_heterogeneous_mode: whether vGPUs of different sizes may share the GPU. */
  vgpuHeterogeneous: boolean | null;
  /** Present inside a VM whose GPU is a licensed vGPU (the guest's view). */
  vgpuLicense: VgpuLicense | null;
  /** Canonical model id, see canonicalGpuModel. */
  model: string;
}

export class NvidiaSmiParseError extends Error {
  readonly code: string = 'NVIDIA_SMI_PARSE_ERROR';

  constructor(message: string) {
    super(message);
    this.name = 'NvidiaSmiParseError';
  }
}

type XmlNode = Record<string, unknown>;

const parser: XMLParser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  // Keep every value a string: uuids, bus ids and "N/A" must not become numbers.
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  isArray: (_name: string, jpath: unknown): boolean => jpath === 'nvidia_smi_log.gpu',
});

const MEMORY_TOTAL: RegExp = /^(\d+)\s*MiB$/i;

/** Parses the output of `nvidia-smi -q -x` into one record per GPU, in document order. */
export function parseNvidiaSmiXml(xml: string): ParsedGpu[] {
  if (typeof xml !== 'string' || xml.trim().length === 0) {
    throw new NvidiaSmiParseError('nvidia-smi XML is empty');
  }
  // nvidia-smi never declares entities; refusing them rules out entity-expansion bombs.
  if (/<!ENTITY/i.test(xml)) {
    throw new NvidiaSmiParseError('nvidia-smi XML must not declare entities');
  }
  const validation: true | { err: { code: string; msg: string; line: number; col: number } } =
    XMLValidator.validate(xml);
  if (validation !== true) {
    const { msg, line, col } = validation.err;
    throw new NvidiaSmiParseError(`nvidia-smi XML is not well-formed: ${msg} (line ${line}, column ${col ?? '?'})`);
  }

  let document: XmlNode;
  try {
    document = parser.parse(xml) as XmlNode;
  } catch (error) {
    // The parser's own limits (nesting depth, for one) refuse input, not a fault of ours.
    throw new NvidiaSmiParseError(`nvidia-smi XML could not be parsed: ${(error as Error).message}`);
  }
  const roots: string[] = Object.keys(document).filter((key: string) => !key.startsWith('?'));
  if (roots.length !== 1 || roots[0] !== 'nvidia_smi_log') {
    throw new NvidiaSmiParseError(`expected root element <nvidia_smi_log>, found <${roots.join('>, <') || 'nothing'}>`);
  }
  const log: unknown = document.nvidia_smi_log;
  const gpus: unknown[] = isNode(log) && Array.isArray(log.gpu) ? log.gpu : [];
  if (gpus.length === 0) {
    throw new NvidiaSmiParseError('nvidia-smi XML lists no <gpu> elements');
  }
  return gpus.map((gpu: unknown, index: number) => parseGpu(gpu, index));
}

function parseGpu(gpu: unknown, index: number): ParsedGpu {
  if (!isNode(gpu)) {
    throw new NvidiaSmiParseError(`<gpu> #${index} is empty`);
  }
  const productName: string = requireText(gpu.product_name, index, 'product_name');
  const uuid: string = requireText(gpu.uuid, index, 'uuid');
  const pciAddress: string = requireText(isNode(gpu.pci) ? gpu.pci.pci_bus_id : undefined, index, 'pci/pci_bus_id');
  const total: string = requireText(
    isNode(gpu.fb_memory_usage) ? gpu.fb_memory_usage.total : undefined,
    index,
    'fb_memory_usage/total',
  );
  const match: RegExpExecArray | null = MEMORY_TOTAL.exec(total);
  const memoryMib: number = match ? Number(match[1]) : Number.NaN;
  if (!(memoryMib > 0)) {
    throw new NvidiaSmiParseError(`<gpu> #${index}: fb_memory_usage/total "${total}" is not a positive "<n> MiB"`);
  }
  const virtualization: XmlNode = isNode(gpu.gpu_virtualization_mode) ? gpu.gpu_virtualization_mode : {};
  return {
    index,
    productName,
    memoryMib,
    pciAddress,
    uuid,
    migMode: parseMigMode(gpu.mig_mode, 'current_mig', index),
    migModePending: parseMigMode(gpu.mig_mode, 'pending_mig', index),
    virtualizationMode: parseChoice(virtualization.virtualization_mode, VIRTUALIZATION_MODES, index, 'gpu_virtualization_mode/virtualization_mode'),
    hostVgpuMode: parseChoice(virtualization.host_vgpu_mode, HOST_VGPU_MODES, index, 'gpu_virtualization_mode/host_vgpu_mode'),
    vgpuHeterogeneous: parseChoice(virtualization.vgpu_heterogeneous_mode, ENABLED, index, 'gpu_virtualization_mode/vgpu_heterogeneous_mode'),
    vgpuLicense: parseLicense(gpu.vgpu_software_licensed_product),
    model: canonicalGpuModel(productName, memoryMib),
  };
}

/** Values as nvidia-smi prints them, lowercased, to what they mean. */
const VIRTUALIZATION_MODES: ReadonlyMap<string, VirtualizationMode> = new Map<string, VirtualizationMode>([
  ['none', 'none'],
  ['pass-through', 'passthrough'],
  ['vgpu', 'vgpu'],
  ['host vgpu', 'host-vgpu'],
  ['host vsga', 'host-vsga'],
]);
const HOST_VGPU_MODES: ReadonlyMap<string, HostVgpuMode> = new Map<string, HostVgpuMode>([
  ['sr-iov', 'sr-iov'],
  ['non sr-iov', 'non-sr-iov'],
]);
const ENABLED: ReadonlyMap<string, boolean> = new Map<string, boolean>([
  ['enabled', true],
  ['disabled', false],
]);

/** The mapped value; null when the element is missing, empty or N/A; an error for anything else. */
function parseChoice<T>(value: unknown, choices: ReadonlyMap<string, T>, index: number, path: string): T | null {
  const text: string = typeof value === 'string' ? value.trim() : '';
  if (text === '' || text.toLowerCase() === 'n/a') return null;
  const choice: T | undefined = choices.get(text.toLowerCase());
  if (choice === undefined) throw new NvidiaSmiParseError(`<gpu> #${index}: unknown ${path} "${text}"`);
  return choice;
}

function parseMigMode(migMode: unknown, field: 'current_mig' | 'pending_mig', index: number): MigMode {
  // GPUs without MIG support either omit <mig_mode> or report N/A.
  const value: unknown = isNode(migMode) ? migMode[field] : undefined;
  if (value === undefined || value === '') return 'unsupported';
  const text: string = typeof value === 'string' ? value.trim().toLowerCase() : '';
  if (text === 'enabled' || text === 'disabled') return text;
  if (text === 'n/a') return 'unsupported';
  throw new NvidiaSmiParseError(`<gpu> #${index}: unknown mig_mode/${field} "${String(value)}"`);
}

function parseLicense(licensed: unknown): VgpuLicense | null {
  if (!isNode(licensed)) return null;
  const product: string = typeof licensed.licensed_product_name === 'string' ? licensed.licensed_product_name.trim() : '';
  if (product === '' || product.toLowerCase() === 'n/a') return null;
  const status: string = typeof licensed.license_status === 'string' ? licensed.license_status.trim() : '';
  return { product, status };
}

function requireText(value: unknown, index: number, path: string): string {
  const text: string = typeof value === 'string' ? value.trim() : '';
  if (text.length === 0) {
    throw new NvidiaSmiParseError(`<gpu> #${index} has no ${path}`);
  }
  return text;
}

function isNode(value: unknown): value is XmlNode {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The sharing mode a GPU registers in, from what its driver reports: mig when MIG mode is on (and we have the
 * model's MIG table), vgpu on a vGPU host (the vGPU manager runs: virtualization mode "Host VGPU"), otherwise
 * passthrough. A MIG change still waiting for a GPU reset does not count: the mode in force does.
 */
export function sharingModeOf(gpu: Pick<ParsedGpu, 'migMode' | 'virtualizationMode' | 'model'>): GpuSharingMode {
  if (gpu.migMode === 'enabled' && supportsMig(gpu.model)) return 'mig';
  if (gpu.virtualizationMode === 'host-vgpu') return 'vgpu';
  return 'passthrough';
}
