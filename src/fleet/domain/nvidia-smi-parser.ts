import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { canonicalGpuModel } from './gpu-model';

export type MigMode = 'enabled' | 'disabled' | 'unsupported';

export interface ParsedGpu {
  /** Position of the `<gpu>` element in the document, 0-based. */
  index: number;
  productName: string;
  memoryMib: number;
  pciAddress: string;
  uuid: string;
  migMode: MigMode;
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
  return {
    index,
    productName,
    memoryMib,
    pciAddress,
    uuid,
    migMode: parseMigMode(gpu.mig_mode, index),
    model: canonicalGpuModel(productName, memoryMib),
  };
}

function parseMigMode(migMode: unknown, index: number): MigMode {
  // GPUs without MIG support either omit <mig_mode> or report N/A.
  const current: unknown = isNode(migMode) ? migMode.current_mig : undefined;
  if (current === undefined || current === '') return 'unsupported';
  const value: string = typeof current === 'string' ? current.trim().toLowerCase() : '';
  if (value === 'enabled' || value === 'disabled') return value;
  if (value === 'n/a') return 'unsupported';
  throw new NvidiaSmiParseError(`<gpu> #${index}: unknown mig_mode/current_mig "${String(current)}"`);
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
