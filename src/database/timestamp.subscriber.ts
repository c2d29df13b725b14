import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntitySubscriberInterface, InsertEvent, ObjectLiteral, UpdateEvent } from 'typeorm';
import { Clock } from '../common/clock';
import { stampInsert } from './prepared-statements';

/**
 * Stamps every entity's @CreateDateColumn and @UpdateDateColumn on each
 * insert and update TypeORM runs (repository and QueryBuilder alike), so no
 * write path can forget them. The values come from the injected Clock, so
 * tests control time; TypeORM's own fallback for an update is SQL
 * CURRENT_TIMESTAMP, which on SQLite has whole seconds only.
 *
 * A value the caller sets explicitly is kept (e.g. a fixture's fixed time).
 */
@Injectable()
export class TimestampSubscriber implements EntitySubscriberInterface {
  constructor(
    @InjectDataSource() dataSource: DataSource,
    private readonly clock: Clock,
  ) {
    dataSource.subscribers.push(this);
  }

  beforeInsert(event: InsertEvent<ObjectLiteral>): void {
    if (event.entity) stampInsert(event.metadata, event.entity, this.clock.now());
  }

  beforeUpdate(event: UpdateEvent<ObjectLiteral>): void {
    const column = event.metadata.updateDateColumn;
    const values = event.entity;
    if (column && values && values[column.propertyName] === undefined) values[column.propertyName] = this.clock.now();
  }
}
