import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestHostSpec {
  name: string;
  gpus: number;
  product?: string;
  memoryMib?: number;
  region?: string;
  cpuCores?: number;
  hostMemoryMib?: number;
  diskGib?: number;
}

let serial = 0;

/** Builds a fleet file (the format of fleet/demo-fleet.json) and returns its path. */
export function writeFleetFile(dir: string, hosts: TestHostSpec[]): string {
  const body = {
    hosts: hosts.map((h) => ({
      name: h.name,
      region: h.region ?? 'test-1',
      cpu_cores: h.cpuCores ?? 256,
      memory_mib: h.hostMemoryMib ?? 2_097_152,
      disk_gib: h.diskGib ?? 30_000,
      gpus: Array.from({ length: h.gpus }, (_, i) => ({
        index: i,
        product_name: h.product ?? 'NVIDIA H100 80GB HBM3',
        memory_mib: h.memoryMib ?? 81_559,
        pci_address: `00000000:${(0x10 + i).toString(16)}:00.0`,
        uuid: `GPU-${(++serial).toString(16).padStart(8, '0')}-0000-4000-8000-${h.name.padEnd(12, '0').slice(0, 12).replace(/[^0-9a-f]/g, 'a')}`,
      })),
    })),
  };
  const path = join(dir, `fleet-${Date.now()}-${serial}.json`);
  writeFileSync(path, JSON.stringify(body));
  return path;
}
