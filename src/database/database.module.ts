import { Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AppConfig } from '../config/app-config';
import { dataSourceOptions } from './data-source-options';
import { MigrationRunner } from './migration-runner';
import { SqlDialect } from './sql-dialect';
import { UnitOfWork } from './unit-of-work';

@Global()
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => dataSourceOptions(config.database),
    }),
  ],
  providers: [
    { provide: SqlDialect, inject: [AppConfig], useFactory: (config: AppConfig) => new SqlDialect(config.database.kind) },
    UnitOfWork,
    MigrationRunner,
  ],
  exports: [SqlDialect, UnitOfWork],
})
export class DatabaseModule {}
