import { ApiProperty } from '@nestjs/swagger';

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
}

export class CapacityResponseDto {
  @ApiProperty({ type: [GpuCapacityDto] })
  items: GpuCapacityDto[];
}
