import { Clock } from '../clock';

/** A clock that moves only when a test moves it (`clock.ms += 1000`). */
export class FakeClock extends Clock {
  constructor(public ms = 0) {
    super();
  }

  now(): Date {
    return new Date(this.ms);
  }
}
