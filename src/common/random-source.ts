/** Randomness used by scheduling and retry jitter; injected so tests can fix it. */
export abstract class RandomSource {
  /** A float in [0, 1). */
  abstract next(): number;
}

export class MathRandomSource extends RandomSource {
  next(): number {
    return Math.random();
  }
}
