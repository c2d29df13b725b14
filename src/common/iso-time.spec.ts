import fc from 'fast-check';
import { isoTime } from './iso-time';

describe('isoTime', () => {
  it('matches Date#toISOString for any instant', () => {
    fc.assert(
      fc.property(fc.date({ noInvalidDate: true }), (date) => {
        expect(isoTime(date)).toBe(date.toISOString());
      }),
      { numRuns: 5000 },
    );
  });
});
