import { Global, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import { Client } from '@vmplane/sdk';
import { AppConfig } from '../config/app-config';
import { HYPERVISOR_CLIENT } from './hypervisor.constants';
import { HypervisorGateway } from './hypervisor.gateway';

@Global()
@Module({
  providers: [
    {
      provide: HYPERVISOR_CLIENT,
      inject: [AppConfig],
      useFactory: (config: AppConfig): Client =>
        new Client(config.sdkApiKey, {
          statePath: config.sdkStatePath,
          failureRate: config.sdkFailureRate,
          latencyMs: config.sdkLatencyMs,
          seed: config.sdkSeed,
        }),
    },
    HypervisorGateway,
  ],
  exports: [HypervisorGateway],
})
export class HypervisorModule implements OnApplicationShutdown {
  constructor(@Inject(HYPERVISOR_CLIENT) private readonly client: Client) {}

  onApplicationShutdown(): void {
    this.client.close?.();
  }
}
