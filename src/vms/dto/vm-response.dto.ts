import { ApiProperty } from '@nestjs/swagger';
import { PowerState, VmStatus } from '../vm.entity';

export class VmGpuDto {
  @ApiProperty({ format: 'uuid', example: '019abcde-1234-7000-8000-0123456789ab' })
  id: string;

  @ApiProperty({ example: 'h100-80gb' })
  model: string;

  @ApiProperty({ example: 81559 })
  memory_mib: number;

  @ApiProperty({ example: '00000000:18:00.0' })
  pci_address: string;

  @ApiProperty({ example: 'GPU-3b6c5a73-17c2-f319-c5b0-563912c55e13', description: 'The physical GPU, as the driver reports it' })
  uuid: string;

  @ApiProperty({ example: 0, description: "The GPU's device index on its host" })
  index: number;

  @ApiProperty({
    type: [Number],
    nullable: true,
    example: null,
    description:
      'For a gpu_profile VM, the slots it holds on this GPU: MIG memory slices 0–7 (8: the media extensions), or its vGPU seat; null for a whole GPU',
  })
  slots: number[] | null;
}

export class VmSshKeyDto {
  @ApiProperty({ example: 'laptop' })
  name: string;

  @ApiProperty({ example: 'SHA256:ar1hPOm8ED6Xcm4ZJHbRAi7ht4kPQRS2bvD1JgVwKOU' })
  fingerprint: string;
}

export class VmResponseDto {
  @ApiProperty({ format: 'uuid', example: '019abcde-0000-7000-8000-000000000000' })
  id: string;

  @ApiProperty({ example: 'test-vm' })
  name: string;

  @ApiProperty({ example: 2 })
  cpu_cores: number;

  @ApiProperty({ example: 4096, description: 'MiB' })
  memory: number;

  @ApiProperty({ example: 50, description: 'GiB' })
  disk_size: number;

  @ApiProperty({ example: '192.168.1.1', nullable: true, type: String })
  public_ip: string | null;

  @ApiProperty({ example: ['test'], type: [String] })
  labels: string[];

  @ApiProperty({ enum: VmStatus, enumName: 'VmStatus', example: VmStatus.Created })
  status: VmStatus;

  @ApiProperty({ nullable: true, type: String, description: 'Why the VM failed', example: null })
  status_reason: string | null;

  @ApiProperty({
    enum: PowerState,
    enumName: 'PowerState',
    example: PowerState.Running,
    description: 'As the hypervisor last reported it (set by each action, refreshed by reconciliation); unknown while the VM is not on a hypervisor',
  })
  power_state: PowerState;

  @ApiProperty({ format: 'uuid', description: 'The owning user', example: '019abcde-1234-7000-8000-0123456789ab' })
  owner_id: string;

  @ApiProperty({ nullable: true, type: String, example: 'gpu-h100-01', description: 'The host the VM was placed on; shown to admins only (members see the region), as /hosts is admin-only' })
  host: string | null;

  @ApiProperty({ nullable: true, type: String, example: 'us-east-1' })
  region: string | null;

  @ApiProperty({ example: 0 })
  gpu_count: number;

  @ApiProperty({ nullable: true, type: String, example: null })
  gpu_model: string | null;

  @ApiProperty({ nullable: true, type: String, example: null, description: 'The fractional GPU asked for instead of gpu_count (a vGPU size or MIG profile); null: none' })
  gpu_profile: string | null;

  @ApiProperty({ type: [VmGpuDto], description: 'The physical GPUs: whole ones, or the one a gpu_profile VM holds slots of' })
  gpus: VmGpuDto[];

  @ApiProperty({ nullable: true, type: String, example: 'debian-12', description: 'The image the VM was made from; null: none (the simulator needs none)' })
  image: string | null;

  @ApiProperty({ type: [VmSshKeyDto], description: 'The SSH keys the VM was given, as they were at create' })
  ssh_keys: VmSshKeyDto[];

  @ApiProperty({ example: 0, description: 'Size of the user data in bytes (the data itself is not returned); 0: none' })
  user_data_bytes: number;

  @ApiProperty({ format: 'date-time', example: '2026-11-26T23:26:55.123Z' })
  created_at: string;

  @ApiProperty({ format: 'date-time', example: '2026-11-26T23:26:55.123Z' })
  updated_at: string;

  @ApiProperty({ format: 'date-time', nullable: true, type: String, example: null })
  deleted_at: string | null;
}

export class VmPageDto {
  @ApiProperty({ type: [VmResponseDto] })
  items: VmResponseDto[];

  @ApiProperty({ nullable: true, type: String, description: 'Pass as ?cursor= for the next page; null on the last page', example: 'eyJiZWZvcmUiOiIwMTlhYmNkZS0xMjM0LTcwMDAtODAwMC0wMTIzNDU2Nzg5YWIifQ' })
  next_cursor: string | null;
}
