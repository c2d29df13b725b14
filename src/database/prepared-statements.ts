import { Injectable } from '@nestjs/common';
import {
  DeleteQueryBuilder,
  EntityMetadata,
  EntityTarget,
  InsertQueryBuilder,
  ObjectLiteral,
  QueryBuilder,
  SelectQueryBuilder,
  UpdateQueryBuilder,
} from 'typeorm';
import { DriverUtils } from 'typeorm/driver/DriverUtils';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';
import { DateUtils } from 'typeorm/util/DateUtils';
import { Clock } from '../common/clock';
import type { Tx } from './unit-of-work';

type Params = Record<string, unknown>;

/** Where a bound value of compiled SQL comes from: an input (or an element of an array input), or a constant TypeORM bound. */
type Slot = { name: string; index: number | null } | { constant: unknown };

interface Compiled {
  sql: string;
  slots: Slot[];
  /** PostgreSQL: the statement under its name (namedStatement), made on first use. */
  named?: string;
}

let statementCount = 0;

/** Only `name` and `text` are its own properties: node-postgres copies a query config's own properties on every query. */
class NamedStatement {
  constructor(
    readonly name: string,
    readonly text: string,
  ) {}

  toString(): string {
    return this.text;
  }
}

/**
 * The SQL for PostgreSQL as a named statement: each pooled connection parses
 * and plans it once, then only binds and executes it, where an unnamed one is
 * parsed and planned on every execution (docs/benchmarks.md). node-postgres
 * takes a `{ name, text }` config where TypeORM's query runner hands it the
 * query; the config also reads as the SQL text (toString) wherever TypeORM
 * uses the query as text (its logger, events and QueryFailedError). Each
 * compiled statement has its own name, so a name never meets another text.
 */
function namedStatement(compiled: Compiled): string {
  compiled.named ??= new NamedStatement(`vmplane_${++statementCount}`, compiled.sql) as unknown as string;
  return compiled.named;
}

/** Stands in for an input while TypeORM builds the SQL, so each bound value can be traced back to its input. */
const sentinel = (name: string) => `\u0000input:${name}\u0000`;
const SENTINEL = /^\u0000input:([^\u0000.]+)(?:\.(\d+))?\u0000$/;

export interface Joined {
  /** The relation property on the main entity, e.g. `host`. */
  property: string;
  /** The alias the builder joined it under, e.g. `h`. */
  alias: string;
}

/**
 * Statement reuse for TypeORM QueryBuilders.
 *
 * TypeORM rebuilds a QueryBuilder's SQL text on every execution (select
 * expressions, property-name replacement, parameter escaping): on the API's
 * create and delete path that was about a third of the server's CPU, more
 * than SQLite spent executing. A prepared statement asks TypeORM to build the
 * SQL once — with every input standing in as a traceable placeholder — and
 * then runs that same text on the unit's TypeORM query runner with the new
 * values (better-sqlite3 keeps its compiled statement per text, PostgreSQL
 * plans it as before). Values are converted with TypeORM's own rules; rows
 * are hydrated into entities through the entity metadata and TypeORM's driver
 * conversions; inserts and updates stamp the timestamp columns from the
 * Clock, as TimestampSubscriber does for every other write.
 *
 * A statement's SQL must depend only on its key and the lengths of its array
 * inputs: conditional clauses belong in the key.
 */
@Injectable()
export class PreparedStatements {
  private readonly compiled = new Map<string, Compiled>();
  /** The JSON-rows form of a compiled SELECT, by the plain statement it wraps. */
  private readonly jsonCompiled = new WeakMap<Compiled, Compiled>();

  constructor(private readonly clock: Clock) {}

  /**
   * Runs a SELECT built by `build` and hydrates its rows into entities of `target` (and joined relations).
   * Rows come over as one JSON object each (asJsonRows) on PostgreSQL always, and on SQLite for `pages`: a
   * statement that returns a page of many rows.
   */
  async select<E extends ObjectLiteral>(
    tx: Tx,
    target: EntityTarget<E>,
    alias: string,
    key: string,
    params: Params,
    build: (qb: SelectQueryBuilder<E>) => SelectQueryBuilder<E>,
    joins: Joined[] = [],
    { pages = false }: { pages?: boolean } = {},
  ): Promise<E[]> {
    const metadata = tx.connection.getMetadata(target);
    const asJson = pages || tx.connection.options.type === 'postgres';
    const plain = this.compile(tx, `select:${metadata.name}:${key}`, params, () => build(tx.getRepository(target).createQueryBuilder(alias)));
    const compiled = asJson ? this.asJsonRows(tx, plain, metadata, alias, joins) : plain;
    const { records } = await this.execute(tx, compiled, params);
    // pg hands a json column over parsed; better-sqlite3 as text.
    const rows = asJson ? records.map((record) => (typeof record.row === 'string' ? JSON.parse(record.row) : record.row) as ObjectLiteral) : records;
    return rows.map((raw) => {
      const entity = hydrate<E>(tx, metadata, alias, raw);
      for (const join of joins) {
        const relation = metadata.findRelationWithPropertyPath(join.property)!;
        const joined = raw[DriverUtils.buildAlias(tx.connection.driver, undefined, join.alias, relation.inverseEntityMetadata.primaryColumns[0].databaseName)];
        (entity as ObjectLiteral)[join.property] = joined === null || joined === undefined ? null : hydrate(tx, relation.inverseEntityMetadata, join.alias, raw);
      }
      return entity;
    });
  }

  /** Runs a SELECT whose rows are raw values (aggregates, projections). */
  async raw<R>(tx: Tx, target: EntityTarget<ObjectLiteral>, alias: string, key: string, params: Params, build: (qb: SelectQueryBuilder<ObjectLiteral>) => SelectQueryBuilder<ObjectLiteral>): Promise<R[]> {
    const metadata = tx.connection.getMetadata(target);
    const compiled = this.compile(tx, `raw:${metadata.name}:${key}`, params, () => build(tx.getRepository(target).createQueryBuilder(alias)));
    return (await this.execute(tx, compiled, params)).records as R[];
  }

  /**
   * Inserts one entity: every column, values converted by TypeORM's driver
   * (JSON, dates), created_at/updated_at stamped on `entity` unless set.
   */
  async insert<E extends ObjectLiteral>(tx: Tx, target: EntityTarget<E>, entity: E): Promise<void> {
    const metadata = tx.connection.getMetadata(target);
    stampInsert(metadata, entity, this.clock.now());
    const params: Params = {};
    for (const column of metadata.columns) {
      const given = column.getEntityValue(entity);
      // An unset column takes the default its entity declares, as TypeORM's own insert would.
      const value = given === undefined && column.default !== undefined && typeof column.default !== 'function' ? column.default : given;
      params[column.propertyName] = tx.connection.driver.preparePersistentValue(value, column);
    }
    const compiled = this.compile(tx, `insert:${metadata.name}`, params, () =>
      tx
        .getRepository(target)
        .createQueryBuilder()
        .insert()
        .values(Object.fromEntries(metadata.columns.map((c) => [c.propertyName, () => `:${c.propertyName}`])) as never),
    );
    await this.execute(tx, compiled, params);
  }

  /**
   * Runs an UPDATE; `build` sets values as `() => ':input'` expressions. The
   * update-date column is set to the Clock's time (returned) unless the
   * builder sets it.
   */
  async update<E extends ObjectLiteral>(
    tx: Tx,
    target: EntityTarget<E>,
    key: string,
    params: Params,
    build: (qb: UpdateQueryBuilder<E>) => UpdateQueryBuilder<E>,
  ): Promise<{ affected: number; updatedAt: Date }> {
    const metadata = tx.connection.getMetadata(target);
    const updatedAt = this.clock.now();
    const column = metadata.updateDateColumn;
    const stamped = column && !(column.propertyName in params) ? { ...params, [column.propertyName]: updatedAt } : params;
    // An input named after a column is written to it: convert it as TypeORM would (JSON columns, dates).
    const withStamp: Params = {};
    for (const [name, value] of Object.entries(stamped)) {
      const target = metadata.findColumnWithPropertyName(name);
      withStamp[name] = target && value !== undefined ? tx.connection.driver.preparePersistentValue(value, target) : value;
    }
    const compiled = this.compile(tx, `update:${metadata.name}:${key}`, withStamp, () => {
      const qb = build(tx.getRepository(target).createQueryBuilder().update());
      if (column && stamped !== params) {
        qb.set({ ...(qb.expressionMap.valuesSet as ObjectLiteral), [column.propertyName]: () => `:${column.propertyName}` } as never);
      }
      return qb;
    });
    const { affected } = await this.execute(tx, compiled, withStamp);
    return { affected, updatedAt };
  }

  async delete<E extends ObjectLiteral>(tx: Tx, target: EntityTarget<E>, key: string, params: Params, build: (qb: DeleteQueryBuilder<E>) => DeleteQueryBuilder<E>): Promise<number> {
    const metadata = tx.connection.getMetadata(target);
    const compiled = this.compile(tx, `delete:${metadata.name}:${key}`, params, () => build(tx.getRepository(target).createQueryBuilder().delete()));
    return (await this.execute(tx, compiled, params)).affected;
  }

  private compile(tx: Tx, key: string, params: Params, build: () => QueryBuilder<ObjectLiteral> | InsertQueryBuilder<ObjectLiteral>): Compiled {
    const lengths = Object.entries(params)
      .filter(([, value]) => Array.isArray(value))
      .map(([name, value]) => `${name}=${(value as unknown[]).length}`);
    const fullKey = `${tx.connection.options.type}|${key}|${lengths.join(',')}`;
    let compiled = this.compiled.get(fullKey);
    if (!compiled) {
      const qb = build();
      qb.setParameters(Object.fromEntries(Object.entries(params).map(([name, value]) => [name, Array.isArray(value) ? value.map((_, i) => sentinel(`${name}.${i}`)) : sentinel(name)])));
      const [sql, values] = qb.getQueryAndParameters();
      compiled = { sql, slots: values.map(toSlot) };
      this.compiled.set(fullKey, compiled);
    }
    return compiled;
  }

  /**
   * The same SELECT with each row as one JSON object under the same keys, read
   * from it as a subquery in the subquery's order (SQLite runs it as a
   * co-routine; PostgreSQL as a subquery scan, which keeps its input's order).
   * A driver builds a row object a property at a time, and pg parses every
   * timestamp column on its own: that costs more than the database writing the
   * row as JSON and JSON.parse reading it (docs/benchmarks.md). JSON keeps
   * integers, text and NULL as the drivers hand them over; a timestamptz
   * becomes ISO text with its offset, which TypeORM's hydration turns into the
   * same Date whatever the process's time zone (vms-repository.medium-spec
   * checks every column against TypeORM's own read, at +05:30).
   * SQLite reads only the entity's and the joined relations' columns, as
   * hydration reads them; PostgreSQL's row_to_json takes the select list,
   * which is exactly those.
   */
  private asJsonRows(tx: Tx, plain: Compiled, metadata: EntityMetadata, alias: string, joins: Joined[]): Compiled {
    let compiled = this.jsonCompiled.get(plain);
    if (!compiled) {
      const escape = (name: string) => tx.connection.driver.escape(name);
      if (tx.connection.options.type === 'postgres') {
        compiled = { sql: `SELECT row_to_json(${escape('q')}) AS ${escape('row')} FROM (${plain.sql}) ${escape('q')}`, slots: plain.slots };
      } else {
        const selected = [{ metadata, alias }, ...joins.map((join) => ({ metadata: metadata.findRelationWithPropertyPath(join.property)!.inverseEntityMetadata, alias: join.alias }))];
        const keys = selected.flatMap((s) => readersUnder(tx, s.metadata, s.alias).map((reader) => reader.key));
        const fields = keys.map((k) => `'${k.replace(/'/g, "''")}', ${escape(k)}`).join(', ');
        compiled = { sql: `SELECT json_object(${fields}) AS ${escape('row')} FROM (${plain.sql})`, slots: plain.slots };
      }
      this.jsonCompiled.set(plain, compiled);
    }
    return compiled;
  }

  private async execute(tx: Tx, compiled: Compiled, params: Params): Promise<{ records: ObjectLiteral[]; affected: number }> {
    const sqlite = tx.connection.options.type !== 'postgres';
    const values = compiled.slots.map((slot) => {
      if ('constant' in slot) return slot.constant;
      const input = params[slot.name];
      const value = slot.index === null ? input : (input as unknown[])[slot.index];
      if (value === undefined) return null;
      return sqlite && value instanceof Date ? DateUtils.mixedDateToUtcDatetimeString(value) : value;
    });
    const runner = tx.queryRunner ?? tx.connection.createQueryRunner();
    try {
      const result = await runner.query(sqlite ? compiled.sql : namedStatement(compiled), values, true);
      return { records: (result.records as ObjectLiteral[] | undefined) ?? [], affected: result.affected ?? 0 };
    } finally {
      if (runner !== tx.queryRunner) await runner.release();
    }
  }
}

function toSlot(value: unknown): Slot {
  const match = typeof value === 'string' ? SENTINEL.exec(value) : null;
  if (!match) return { constant: value };
  return { name: match[1], index: match[2] === undefined ? null : Number(match[2]) };
}

/**
 * How one column of a raw row becomes an entity property: the row's key
 * under the alias, the property (null: let TypeORM's setEntityValue place
 * it), and the conversion.
 */
interface ColumnReader {
  column: ColumnMetadata;
  key: string;
  property: string | null;
  convert: (value: unknown, column: ColumnMetadata) => unknown;
}

/** SQLite column types whose values TypeORM's driver hands over unchanged (prepareHydratedValue has no branch for them). */
const SQLITE_PASSTHROUGH = new Set<unknown>(['varchar', 'text', 'uuid', 'integer']);

/** Each column's reader under an alias, worked out once per entity, alias and database. */
const readers = new WeakMap<EntityMetadata, Map<string, ColumnReader[]>>();

function readersUnder(tx: Tx, metadata: EntityMetadata, alias: string): ColumnReader[] {
  let byAlias = readers.get(metadata);
  if (!byAlias) readers.set(metadata, (byAlias = new Map()));
  let columns = byAlias.get(alias);
  if (!columns) {
    const driver = tx.connection.driver;
    const sqlite = tx.connection.options.type !== 'postgres';
    const viaDriver = (value: unknown, column: ColumnMetadata): unknown => driver.prepareHydratedValue(value, column);
    columns = metadata.columns.map((column) => {
      const plain = !column.transformer;
      let convert = viaDriver;
      if (sqlite && plain && SQLITE_PASSTHROUGH.has(column.type)) convert = (value) => value;
      else if (sqlite && plain && (column.type === 'datetime' || column.type === Date)) convert = (value, c) => sqliteTimestamp(value) ?? viaDriver(value, c);
      const simple = !column.embeddedMetadata && !(column.isVirtual && column.referencedColumn);
      return { column, key: DriverUtils.buildAlias(driver, undefined, alias, column.databaseName), property: simple ? column.propertyName : null, convert };
    });
    byAlias.set(alias, columns);
  }
  return columns;
}

/**
 * SQLite's text for an instant as TypeORM writes it ("2026-12-01 05:06:07.890",
 * UTC) as a Date, without the two regular expressions and the string parse of
 * the driver's path (a page of 50 VMs reads 100 of them); undefined for any
 * other text or value, which the driver converts.
 */
export function sqliteTimestamp(value: unknown): Date | undefined {
  if (typeof value !== 'string' || value.length !== 23 || value[10] !== ' ' || value[19] !== '.') return undefined;
  const n = (from: number, length: number): number => {
    let result = 0;
    for (let i = from; i < from + length; i++) {
      const digit = value.charCodeAt(i) - 48;
      if (digit < 0 || digit > 9) return Number.NaN;
      result = result * 10 + digit;
    }
    return result;
  };
  const year = n(0, 4);
  const month = n(5, 2);
  const day = n(8, 2);
  const hour = n(11, 2);
  const minute = n(14, 2);
  const second = n(17, 2);
  const ms = n(20, 3);
  if (value[4] !== '-' || value[7] !== '-' || value[13] !== ':' || value[16] !== ':') return undefined;
  if (!(year >= 1000 && month >= 1 && month <= 12 && day >= 1 && hour <= 23 && minute <= 59 && second <= 59 && ms >= 0)) return undefined;
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second, ms));
  // A day past the month's end (02-30) rolls over here but is an invalid date to the driver: let it decide.
  return date.getUTCDate() === day ? date : undefined;
}

function hydrate<E>(tx: Tx, metadata: EntityMetadata, alias: string, raw: ObjectLiteral): E {
  const entity = metadata.create(undefined, { fromDeserializer: true }) as ObjectLiteral;
  for (const { column, key, property, convert } of readersUnder(tx, metadata, alias)) {
    if (!(key in raw)) continue;
    const value = raw[key];
    // Null (and undefined) pass through the driver unchanged for columns without a transformer.
    const converted = (value === null || value === undefined) && !column.transformer ? value : convert(value, column);
    if (property !== null) entity[property] = converted;
    else column.setEntityValue(entity, converted);
  }
  return entity as E;
}

/** Fills the timestamp columns an insert leaves unset; one rule for TypeORM's own writes and prepared ones. */
export function stampInsert(metadata: EntityMetadata, entity: ObjectLiteral, now: Date): void {
  for (const column of [metadata.createDateColumn, metadata.updateDateColumn]) {
    if (column && entity[column.propertyName] === undefined) entity[column.propertyName] = now;
  }
}
