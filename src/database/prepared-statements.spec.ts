import fc from 'fast-check';
import { AbstractSqliteDriver } from 'typeorm/driver/sqlite-abstract/AbstractSqliteDriver';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';
import { DateUtils } from 'typeorm/util/DateUtils';
import { sqliteTimestamp } from './prepared-statements';

/** What TypeORM's SQLite driver makes of a datetime column's value. */
function viaDriver(value: unknown): unknown {
  return AbstractSqliteDriver.prototype.prepareHydratedValue.call({}, value, { type: 'datetime' } as ColumnMetadata);
}

describe('sqliteTimestamp', () => {
  it('reads every instant TypeORM writes as the Date the driver would', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date('1000-01-01T00:00:00.000Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }), (date: Date) => {
        const text = DateUtils.mixedDateToUtcDatetimeString(date) as string;
        expect(sqliteTimestamp(text)).toEqual(date);
        expect(sqliteTimestamp(text)).toEqual(viaDriver(text));
      }),
      { numRuns: 2_000 },
    );
  });

  it.each([
    '2026-02-30 10:00:00.000',
    '2026-13-01 10:00:00.000',
    '2026-12-01 24:00:00.000',
    '2026-12-01T10:00:00.000',
    '2026-12-01 10:00:00',
    '2026-12-01 10:00:00.000Z',
    '2026-12-0x 10:00:00.000',
    '0999-12-01 10:00:00.000',
  ])('leaves %s to the driver', (text: string) => {
    expect(sqliteTimestamp(text)).toBeUndefined();
  });

  it('leaves values that are not text to the driver', () => {
    expect(sqliteTimestamp(new Date(0))).toBeUndefined();
    expect(sqliteTimestamp(1_700_000_000_000)).toBeUndefined();
  });
});
