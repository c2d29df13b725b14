/** The time source. Injected so tests can control it; nothing else calls `new Date()` for stored timestamps. */
export abstract class Clock {
  abstract now(): Date;
}

export class SystemClock extends Clock {
  now(): Date {
    return new Date();
  }
}

/** A timestamp strictly later than `previous`, so updated_at always moves forward even within one millisecond. */
export function laterThan(now: Date, previous: Date | null | undefined): Date {
  if (previous && now.getTime() <= previous.getTime()) return new Date(previous.getTime() + 1);
  return now;
}
