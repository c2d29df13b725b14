import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import { AuthModule } from './auth/auth.module';
import { CommonModule } from './common/common.module';
import { ProblemDetailsFilter } from './common/problem-details.filter';
import { StrictValidationPipe } from './common/validation';
import { AppConfig } from './config/app-config';
import { ConfigModule } from './config/config.module';
import { DatabaseModule } from './database/database.module';
import { StartupModule } from './startup/startup.module';
import { FleetModule } from './fleet/fleet.module';
import { HealthModule } from './health/health.module';
import { ImagesModule } from './images/images.module';
import { SshKeysModule } from './ssh-keys/ssh-keys.module';
import { HypervisorModule } from './hypervisor/hypervisor.module';
import { InstallationModule } from './installation/installation.module';
import { MetricsModule } from './metrics/metrics.module';
import { OperationsModule } from './operations/operations.module';
import { ReconcilerModule } from './reconciler/reconciler.module';
import { UsersModule } from './users/users.module';
import { VmModule } from './vms/vms.module';
import { UsageModule } from './usage/usage.module';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        CommonModule,
        DatabaseModule,
        InstallationModule,
        MetricsModule,
        HypervisorModule,
        AuthModule,
        UsersModule,
        FleetModule,
        ImagesModule,
        SshKeysModule,
        OperationsModule,
        VmModule,
        UsageModule,
        ReconcilerModule,
        HealthModule,
        StartupModule,
      ],
      providers: [
        { provide: APP_PIPE, useClass: StrictValidationPipe },
        { provide: APP_FILTER, useClass: ProblemDetailsFilter },
      ],
    };
  }
}
