import type { GpuCapacityDto, HostResponseDto, ImageResponseDto, OperationResponseDto, SshKeyResponseDto, UsageReportDto, VmResponseDto, VmUsageDto } from '../../client/src';

export type Align = 'left' | 'right';
export interface Column<T> {
  header: string;
  value: (row: T) => string | number | null | undefined;
  align?: Align;
}

/** A plain-text table: a header row, then one row per item, columns two spaces apart. */
export function table<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = rows.map((row) => columns.map((column) => text(column.value(row))));
  const widths = columns.map((column, i) => Math.max(column.header.length, ...cells.map((r) => r[i].length)));
  const line = (values: string[]) =>
    values
      .map((value, i) => (columns[i].align === 'right' ? value.padStart(widths[i]) : value.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join('\n') + '\n';
}

/** `Key   value` lines, keys padded to one width. */
export function details(pairs: readonly [string, string | number | null | undefined][]): string {
  const width = Math.max(...pairs.map(([key]) => key.length));
  return pairs.map(([key, value]) => `${key.padEnd(width)}  ${text(value)}`.trimEnd()).join('\n') + '\n';
}

function text(value: string | number | null | undefined): string {
  return value === null || value === undefined || value === '' ? '-' : escapeControl(String(value));
}

/**
 * C0 controls, DEL and C1 controls: what a terminal may act on. ESC (0x1b) starts every
 * escape sequence, and 0x9b is CSI on terminals that take 8-bit controls.
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
const CONTROL_BUT_LINE_BREAK = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g;

function hex(char: string): string {
  return `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

/**
 * Shows control characters as `\xHH`, so that nothing a server returns, or another user
 * stored, can retitle, clear or recolour the terminal, or break a table's rows.
 */
export function escapeControl(value: string): string {
  return value.replace(CONTROL, hex);
}

/** escapeControl for text the CLI lays out in lines itself: its line breaks stay. */
export function escapeControlKeepLines(value: string): string {
  return value.replace(CONTROL_BUT_LINE_BREAK, hex);
}

/**
 * A serial console's tail as lines: a serial line ends in CR LF, which is one
 * line break here (a lone CR, which a terminal would use to overwrite the line,
 * is still shown as \x0d by print), and the text ends with a line break.
 */
export function consoleLines(log: string): string {
  const text = log.replace(/\r\n/g, '\n');
  return text === '' || text.endsWith('\n') ? text : `${text}\n`;
}

/** Indented JSON that is safe on a terminal: JSON.stringify escapes C0 controls in strings but leaves DEL and C1 raw. */
export function safeJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/[\u007f-\u009f]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** 2026-01-02T03:04:05.678Z → 2026-01-02 03:04:05Z */
export function time(iso: string | null | undefined): string {
  return iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-';
}

export function gpus(vm: Pick<VmResponseDto, 'gpu_count' | 'gpu_model' | 'gpus'> & Partial<Pick<VmResponseDto, 'gpu_profile'>>): string {
  if (vm.gpu_profile) {
    const gpu = vm.gpus[0];
    const where = gpu ? ` (GPU ${gpu.index} ${gpu.uuid}${gpu.slots ? `, slots ${gpu.slots.join(',')}` : ''})` : '';
    return `${vm.gpu_profile} of ${gpu?.model ?? vm.gpu_model ?? 'any'}${where}`;
  }
  if (vm.gpu_count === 0) return '-';
  const model = vm.gpus[0]?.model ?? vm.gpu_model ?? 'any';
  return `${vm.gpu_count}×${model}`;
}

export const VM_COLUMNS: Column<VmResponseDto>[] = [
  { header: 'ID', value: (vm) => vm.id },
  { header: 'NAME', value: (vm) => vm.name },
  { header: 'STATUS', value: (vm) => vm.status },
  { header: 'POWER', value: (vm) => vm.power_state },
  { header: 'CPUS', value: (vm) => vm.cpu_cores, align: 'right' },
  { header: 'MEMORY', value: (vm) => `${vm.memory} MiB`, align: 'right' },
  { header: 'DISK', value: (vm) => `${vm.disk_size} GiB`, align: 'right' },
  { header: 'GPUS', value: gpus },
  { header: 'REGION', value: (vm) => vm.region },
  { header: 'HOST', value: (vm) => vm.host },
  { header: 'LABELS', value: (vm) => vm.labels.join(',') },
  { header: 'CREATED', value: (vm) => time(vm.created_at) },
];

export function vmDetails(vm: VmResponseDto): string {
  const pairs: [string, string | number | null][] = [
    ['ID', vm.id],
    ['Name', vm.name],
    ['Status', vm.status_reason ? `${vm.status} (${vm.status_reason})` : vm.status],
    ['Power', vm.power_state],
    ['CPUs', vm.cpu_cores],
    ['Memory', `${vm.memory} MiB`],
    ['Disk', `${vm.disk_size} GiB`],
    ['GPUs', gpus(vm)],
  ];
  for (const gpu of vm.gpus) pairs.push(['', `${gpu.pci_address}  ${gpu.model}  ${gpu.memory_mib} MiB  ${gpu.id}${gpu.slots ? `  slots ${gpu.slots.join(',')}` : ''}`]);
  pairs.push(
    ['Region', vm.region],
    ['Host', vm.host],
    ['Public IP', vm.public_ip],
    ['Image', vm.image],
    ['SSH keys', vm.ssh_keys.map((k) => `${k.name} (${k.fingerprint})`).join(', ')],
    ['User data', vm.user_data_bytes > 0 ? `${vm.user_data_bytes} bytes` : null],
    ['Labels', vm.labels.join(', ')],
    ['Owner', vm.owner_id],
    ['Created', time(vm.created_at)],
    ['Updated', time(vm.updated_at)],
    ['Deleted', time(vm.deleted_at)],
  );
  return details(pairs);
}

export const IMAGE_COLUMNS: Column<ImageResponseDto>[] = [
  { header: 'NAME', value: (i) => i.name },
  { header: 'FORMAT', value: (i) => i.format },
  { header: 'PATH', value: (i) => i.path },
  { header: 'CREATED', value: (i) => time(i.created_at) },
];

/** A host's GPUs by model, in device order: "8×h100-80gb", "2×a100-80gb 2×l4-24gb"; free ones in brackets when some are bound. */
export function hostGpus(host: Pick<HostResponseDto, 'gpus'>): string {
  if (host.gpus.length === 0) return '-';
  const byModel = new Map<string, { total: number; free: number }>();
  for (const gpu of host.gpus) {
    const entry = byModel.get(gpu.model) ?? { total: 0, free: 0 };
    entry.total++;
    if (gpu.vm_id === null) entry.free++;
    byModel.set(gpu.model, entry);
  }
  return [...byModel].map(([model, { total, free }]) => `${total}×${model}${free < total ? ` (${free} free)` : ''}`).join(' ');
}

export const HOST_COLUMNS: Column<HostResponseDto>[] = [
  { header: 'ID', value: (h) => h.id },
  { header: 'NAME', value: (h) => h.name },
  { header: 'REGION', value: (h) => h.region },
  { header: 'STATE', value: (h) => h.state },
  { header: 'CPUS', value: (h) => `${h.used.cpu_cores}/${h.cpu_cores}`, align: 'right' },
  { header: 'GPUS', value: hostGpus },
  { header: 'LABELS', value: (h) => h.labels.join(',') },
];

export const SSH_KEY_COLUMNS: Column<SshKeyResponseDto>[] = [
  { header: 'ID', value: (k) => k.id },
  { header: 'NAME', value: (k) => k.name },
  { header: 'TYPE', value: (k) => k.type },
  { header: 'FINGERPRINT', value: (k) => k.fingerprint },
  { header: 'COMMENT', value: (k) => k.comment },
];

export const CAPACITY_COLUMNS: Column<GpuCapacityDto>[] = [
  { header: 'GPU MODEL', value: (c) => c.gpu_model },
  { header: 'REGION', value: (c) => c.region },
  { header: 'TOTAL', value: (c) => c.total, align: 'right' },
  { header: 'ALLOCATED', value: (c) => c.allocated, align: 'right' },
  { header: 'FREE', value: (c) => c.free, align: 'right' },
  { header: 'UNAVAILABLE', value: (c) => c.unavailable, align: 'right' },
  { header: 'LARGEST PLACEABLE', value: (c) => c.largest_placeable, align: 'right' },
  // Fractional GPUs: how many of each profile fit now, e.g. "1g.18gb:14 3g.71gb:4"; - when every GPU is whole.
  { header: 'PROFILES (FIT NOW)', value: (c) => (c.profiles ?? []).map((p) => `${p.profile}:${p.placeable_now}`).join(' ') || '-' },
];

export const USAGE_COLUMNS: Column<VmUsageDto>[] = [
  { header: 'VM', value: (u) => u.vm_id },
  { header: 'NAME', value: (u) => u.name },
  { header: 'GPU', value: (u) => (u.gpu_profile ? `${u.gpu_model ?? 'any'} ${u.gpu_profile}` : u.gpu_model ?? '-') },
  { header: 'VM HOURS', value: (u) => u.vm_hours, align: 'right' },
  { header: 'GPU HOURS', value: (u) => u.gpu_hours, align: 'right' },
];

/** A usage report: its window and totals, per GPU model, then a row per VM. */
export function usageReport(report: UsageReportDto): string {
  const head = details([
    ['Window', `${report.start} – ${report.end}`],
    ['VM hours', report.vm_hours],
    ['GPU hours', report.gpu_hours],
    ...report.gpu_hours_by_model.map((m): [string, number] => [`  ${m.gpu_model}`, m.gpu_hours]),
  ]);
  return `${head}\n${report.vms.length === 0 ? 'No VM ran or held GPUs in this window.\n' : table(report.vms, USAGE_COLUMNS)}`;
}

export const OPERATION_COLUMNS: Column<OperationResponseDto>[] = [
  { header: 'ID', value: (op) => op.id },
  { header: 'ACTION', value: (op) => op.action },
  { header: 'STATUS', value: (op) => op.status },
  { header: 'STAGE', value: (op) => op.stage },
  { header: 'ATTEMPTS', value: (op) => op.attempts, align: 'right' },
  { header: 'ERROR', value: (op) => (op.error ? `${op.error.code}: ${op.error.message}` : null) },
  { header: 'CREATED', value: (op) => time(op.created_at) },
  { header: 'FINISHED', value: (op) => time(op.finished_at) },
];

/**
 * Progress on stderr while the CLI waits: on a terminal one line rewritten in place,
 * otherwise (logs, CI, tests) one line per change.
 */
export class Progress {
  private last = '';
  private readonly started = Date.now();
  private readonly tty: boolean;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly enabled = true,
  ) {
    this.tty = Boolean(stream.isTTY);
  }

  update(message: string): void {
    const safe = escapeControl(message);
    if (!this.enabled || safe === this.last) return;
    this.last = safe;
    const line = `${safe} [${this.elapsed()}]`;
    if (this.tty) this.stream.write(`\r\x1b[2K${line}`);
    else this.stream.write(`${line}\n`);
  }

  done(message: string): void {
    if (!this.enabled) return;
    if (this.tty) this.stream.write('\r\x1b[2K');
    this.stream.write(`${escapeControl(message)} in ${this.elapsed()}\n`);
  }

  private elapsed(): string {
    return `${((Date.now() - this.started) / 1000).toFixed(1)} s`;
  }
}
