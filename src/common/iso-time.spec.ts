import fc from 'fast-check';
import { isoTime, parseSqlUtc } from './iso-time';

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

describe('parseSqlUtc', () => {
  it('reads back what SQLite stores for any instant in years 1000–9999', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date('1000-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }), (date) => {
        const stored = date.toISOString().replace('T', ' ').slice(0, 23);
        expect(parseSqlUtc(stored)?.getTime()).toBe(date.getTime());
      }),
      { numRuns: 5000 },
    );
  });

  it('returns null for other shapes', () => {
    expect(parseSqlUtc('2026-11-27T04:17:20.744Z')).toBeNull();
    expect(parseSqlUtc('2026-11-27 04:17:20')).toBeNull();
    expect(parseSqlUtc('')).toBeNull();
  });
});
