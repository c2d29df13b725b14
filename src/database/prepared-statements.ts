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

  constructor(private readonly clock: Clock) {}

  /** Runs a SELECT built by `build` and hydrates its rows into entities of `target` (and joined relations). */
  async select<E extends ObjectLiteral>(
    tx: Tx,
    target: EntityTarget<E>,
    alias: string,
    key: string,
    params: Params,
    build: (qb: SelectQueryBuilder<E>) => SelectQueryBuilder<E>,
    joins: Joined[] = [],
  ): Promise<E[]> {
    const metadata = tx.connection.getMetadata(target);
    const compiled = this.compile(tx, `select:${metadata.name}:${key}`, params, () => build(tx.getRepository(target).createQueryBuilder(alias)));
    const { records } = await this.execute(tx, compiled, params);
    return records.map((raw) => {
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
      const result = await runner.query(compiled.sql, values, true);
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

/** Each column of an entity with the key its value has in a raw row under an alias, worked out once per alias. */
const rawKeys = new WeakMap<EntityMetadata, Map<string, { column: ColumnMetadata; key: string }[]>>();

function columnsUnder(tx: Tx, metadata: EntityMetadata, alias: string): { column: ColumnMetadata; key: string }[] {
  let byAlias = rawKeys.get(metadata);
  if (!byAlias) rawKeys.set(metadata, (byAlias = new Map()));
  let columns = byAlias.get(alias);
  if (!columns) {
    const driver = tx.connection.driver;
    columns = metadata.columns.map((column) => ({ column, key: DriverUtils.buildAlias(driver, undefined, alias, column.databaseName) }));
    byAlias.set(alias, columns);
  }
  return columns;
}

function hydrate<E>(tx: Tx, metadata: EntityMetadata, alias: string, raw: ObjectLiteral): E {
  const driver = tx.connection.driver;
  const entity = metadata.create(undefined, { fromDeserializer: true }) as ObjectLiteral;
  for (const { column, key } of columnsUnder(tx, metadata, alias)) {
    if (key in raw) column.setEntityValue(entity, driver.prepareHydratedValue(raw[key], column));
  }
  return entity as E;
}

/** Fills the timestamp columns an insert leaves unset; one rule for TypeORM's own writes and prepared ones. */
export function stampInsert(metadata: EntityMetadata, entity: ObjectLiteral, now: Date): void {
  for (const column of [metadata.createDateColumn, metadata.updateDateColumn]) {
    if (column && entity[column.propertyName] === undefined) entity[column.propertyName] = now;
  }
}
