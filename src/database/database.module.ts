import { Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AppConfig } from '../config/app-config';
import { dataSourceOptions, openDataSource } from './data-source-options';
import { MigrationRunner } from './migration-runner';
import { PreparedStatements } from './prepared-statements';
import { TimestampSubscriber } from './timestamp.subscriber';
import { SqliteCheckpointerService } from './sqlite-checkpointer';
import { UnitOfWork } from './unit-of-work';

@Global()
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [AppConfig],
      // Fail the start at once, in one line; a process supervisor restarts it when the database is back.
      useFactory: (config: AppConfig) => ({ ...dataSourceOptions(config.database), toRetry: () => false }),
      dataSourceFactory: (options) => openDataSource(options!),
    }),
  ],
  providers: [UnitOfWork, MigrationRunner, TimestampSubscriber, PreparedStatements, SqliteCheckpointerService],
  exports: [UnitOfWork, PreparedStatements],
})
export class DatabaseModule {}
