import { Global, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import { Client, LibvirtClient, type HypervisorClient } from '@vmplane/sdk';
import { AppConfig } from '../config/app-config';
import { HYPERVISOR_CLIENT } from './hypervisor.constants';
import { HypervisorGateway } from './hypervisor.gateway';

/** The one place a hypervisor client is built: the driver HYPERVISOR_DRIVER names. */
export function createHypervisorClient(config: AppConfig): HypervisorClient {
  if (config.hypervisorDriver === 'libvirt') {
    return new LibvirtClient({
      defaultUri: config.libvirtDefaultUri,
      network: config.libvirtNetwork,
      pool: config.libvirtPool,
      poolPath: config.libvirtPoolPath ?? undefined,
      stopTimeoutSeconds: config.stopTimeoutSeconds,
      domainType: config.libvirtDomainType,
    });
  }
  return new Client(config.sdkApiKey, {
    statePath: config.sdkStatePath,
    failureRate: config.sdkFailureRate,
    latencyMs: config.sdkLatencyMs,
    seed: config.sdkSeed,
  });
}

@Global()
@Module({
  providers: [{ provide: HYPERVISOR_CLIENT, inject: [AppConfig], useFactory: createHypervisorClient }, HypervisorGateway],
  exports: [HypervisorGateway],
})
export class HypervisorModule implements OnApplicationShutdown {
  constructor(@Inject(HYPERVISOR_CLIENT) private readonly client: HypervisorClient) {}

  onApplicationShutdown(): void {
    this.client.close?.();
  }
}
