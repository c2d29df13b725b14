import { randomFillSync } from 'node:crypto';

/**
 * Generates resource ids: UUIDv7 (RFC 9562), time-ordered so that keyset
 * pagination can order by id alone. Randomness and time are injectable.
 */
export abstract class IdGenerator {
  abstract next(): string;
}

export class UuidV7Generator extends IdGenerator {
  private lastMs = 0;
  private sequence = 0;

  constructor(
    private readonly nowMs: () => number = Date.now,
    private readonly fillRandom: (bytes: Uint8Array) => void = pooledRandomFill,
  ) {
    super();
  }

  next(): string {
    let ms = this.nowMs();
    // Monotonic within a process: a 12-bit counter in rand_a orders ids created in the same millisecond.
    if (ms <= this.lastMs) {
      ms = this.lastMs;
      this.sequence++;
      if (this.sequence > 0xfff) {
        ms = ++this.lastMs;
        this.sequence = 0;
      }
    } else {
      this.lastMs = ms;
      this.sequence = 0;
    }
    const bytes = new Uint8Array(16);
    this.fillRandom(bytes);
    bytes[0] = Math.floor(ms / 2 ** 40) & 0xff;
    bytes[1] = Math.floor(ms / 2 ** 32) & 0xff;
    bytes[2] = (ms >>> 24) & 0xff;
    bytes[3] = (ms >>> 16) & 0xff;
    bytes[4] = (ms >>> 8) & 0xff;
    bytes[5] = ms & 0xff;
    bytes[6] = 0x70 | ((this.sequence >>> 8) & 0x0f);
    bytes[7] = this.sequence & 0xff;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Buffer.from(bytes).toString('hex');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
}

/**
 * Cryptographic random bytes handed out from a pool refilled 4 KiB at a time,
 * as node's own randomUUID() does: a randomFillSync per id showed up on the
 * create path's profile (docs/benchmarks.md).
 */
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

function pooledRandomFill(bytes: Uint8Array): void {
  if (poolOffset + bytes.length > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  bytes.set(pool.subarray(poolOffset, poolOffset + bytes.length));
  poolOffset += bytes.length;
}

export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
