import { ApiProperty } from '@nestjs/swagger';

export class ProfileCapacityDto {
  @ApiProperty({ example: '3g.71gb', description: 'A vGPU size (GPUs in vgpu mode) or MIG profile (GPUs in mig mode), as POST /vms takes it in gpu_profile' })
  profile: string;

  @ApiProperty({
    example: 2,
    description:
      'How many VMs of this profile fit right now on GPUs of this model in this region, one after another, honouring the slot layout (seven free 1g slots do not make a 7g) and the one-size-per-GPU rule of vGPUs',
  })
  placeable_now: number;

  @ApiProperty({ example: 429, description: 'What one VM of this profile counts against a GPU quota, in milli-GPUs' })
  gpu_milli: number;
}

export class GpuCapacityDto {
  @ApiProperty({ example: 'h100-80gb' })
  gpu_model: string;

  @ApiProperty({ example: 'us-east-1' })
  region: string;

  @ApiProperty({ example: 16, description: 'GPUs of this model in this region, on hosts in any state' })
  total: number;

  @ApiProperty({ example: 8, description: 'Bound to VMs' })
  allocated: number;

  @ApiProperty({ example: 8, description: 'Unbound, on active hosts' })
  free: number;

  @ApiProperty({ example: 0, description: 'Unbound, on draining or down hosts' })
  unavailable: number;

  @ApiProperty({
    example: 8,
    description: 'The largest gpu_count one VM can get right now (free GPUs of this model on one active host with spare CPU, memory and disk)',
  })
  largest_placeable: number;

  @ApiProperty({
    type: [ProfileCapacityDto],
    description: 'Fractional GPUs: the profiles GPUs of this model in this region are shared in (vgpu or mig mode), each with how many fit now; empty when every GPU is passthrough',
  })
  profiles: ProfileCapacityDto[];
}

export class CapacityQueueDto {
  @ApiProperty({ nullable: true, type: String, example: 'h100-80gb', description: 'null: requests for any model' })
  gpu_model: string | null;

  @ApiProperty({ nullable: true, type: String, example: 'us-east-1', description: 'null: requests for any region' })
  region: string | null;

  @ApiProperty({ example: 3, description: 'Requests waiting for capacity' })
  length: number;

  @ApiProperty({ example: 412, description: 'How long the oldest one has waited, in seconds' })
  oldest_age_seconds: number;
}

export class CapacityResponseDto {
  @ApiProperty({ type: [GpuCapacityDto] })
  items: GpuCapacityDto[];

  @ApiProperty({ type: [CapacityQueueDto], description: 'The capacity queues that have requests waiting (POST /vms with wait_for_capacity_seconds)' })
  queues: CapacityQueueDto[];
}
