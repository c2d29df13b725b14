/**
 * Canonical GPU model ids: `<name>-<marketed memory>gb`, e.g. `h200-141gb`,
 * `a100-80gb`, `rtx-6000-ada-48gb`. Hosts report GPUs through nvidia-smi,
 * whose product names mix vendor, form factor and memory type, and whose
 * memory totals are below the marketed size (the driver reserves some), so
 * two hosts with the same card must still agree on one id.
 */

/** Lowercase words and digits joined by single hyphens, ending in `-<n>gb`. */
export const GPU_MODEL_ID_PATTERN: RegExp = /^[a-z0-9]+(?:-[a-z0-9]+)*-[1-9][0-9]*gb$/;

/**
 * Marketed memory sizes in GB, ascending. A reported size maps to the smallest
 * entry ≥ floor(MiB / 1024): the driver's reservation is at most a few GiB,
 * and no two marketed sizes sit closer together than that where it matters
 * (L40S reports 44.99 GiB ⇒ 48, H100 NVL 93.6 ⇒ 94, H200 140.4 ⇒ 141,
 * B200 179.1 ⇒ 180).
 */
export const MARKETED_MEMORY_SIZES_GB: readonly number[] = [
  1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 16, 20, 24, 32, 40, 48, 64, 80, 94, 96, 120, 128, 141, 180, 192,
  256, 288,
];

const DROPPED_WORDS: ReadonlySet<string> = new Set([
  'nvidia',
  'tesla',
  'geforce',
  'quadro',
  'generation',
  'pcie',
  'oam',
  'mxm',
]);
const MEMORY_SIZE_TOKEN: RegExp = /^\d+(?:gb|gib|g)$/;
const MEMORY_KIND_TOKEN: RegExp = /^(?:hbm\d*e?|gddr\d+x?|ddr\d+)$/;
const SXM_TOKEN: RegExp = /^sxm\d*$/;

/** The marketed size (GB) for a memory total as nvidia-smi reports it (MiB). */
export function marketedMemoryGb(memoryMib: number): number {
  if (!Number.isFinite(memoryMib) || memoryMib <= 0) {
    throw new RangeError(`GPU memory must be a positive number of MiB, got ${memoryMib}`);
  }
  const gib = Math.max(1, Math.floor(memoryMib / 1024));
  for (const size of MARKETED_MEMORY_SIZES_GB) {
    if (size >= gib) return size;
  }
  // Larger than any size we know of: the reservation is noise at that scale.
  return Math.round(memoryMib / 1024);
}

/** The model part of the id: product name without vendor, form factor or memory words. */
export function gpuModelName(productName: string): string {
  const tokens: string[] = productName
    .toLowerCase()
    .split(/[\s\-_/]+/)
    .map((token: string) => token.replace(/[^a-z0-9]/g, ''))
    .filter(
      (token: string) =>
        token.length > 0 &&
        !DROPPED_WORDS.has(token) &&
        !MEMORY_SIZE_TOKEN.test(token) &&
        !MEMORY_KIND_TOKEN.test(token) &&
        !SXM_TOKEN.test(token),
    );
  return tokens.length > 0 ? tokens.join('-') : 'unknown';
}

/** `canonicalGpuModel('NVIDIA H200', 143771)` ⇒ `'h200-141gb'`. */
export function canonicalGpuModel(productName: string, memoryMib: number): string {
  return `${gpuModelName(productName)}-${marketedMemoryGb(memoryMib)}gb`;
}

/** What a GPU model a user typed names among the fleet's models: one of them, or the ones it could mean (none, or several). */
export type GpuModelMatch = { model: string } | { model: null; matches: string[] };

/**
 * Reads a GPU model as people write it — `H100`, `h100 80gb`, `NVIDIA A100-SXM4-80GB`, `l40s` — against
 * the fleet's canonical ids: the one id with that name (and memory size, if given). `H100` means
 * `h100-80gb`, not `h100-nvl-94gb`: the name must match whole. No match, or several: `model` is null.
 */
export function matchGpuModel(input: string, known: readonly string[]): GpuModelMatch {
  const lowered = input.trim().toLowerCase();
  if (known.includes(lowered)) return { model: lowered };
  const name = gpuModelName(lowered);
  const memory = /(?:^|[\s\-_/])(\d+)(?:gb|gib|g)(?=$|[\s\-_/])/.exec(lowered)?.[1];
  const matches = known.filter((model: string) => {
    if (!model.startsWith(`${name}-`)) return false;
    const size = /^(\d+)gb$/.exec(model.slice(name.length + 1))?.[1];
    return size !== undefined && (memory === undefined || Number(size) === Number(memory));
  });
  return matches.length === 1 ? { model: matches[0] } : { model: null, matches };
}
