import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsISO8601, IsOptional, MaxLength } from 'class-validator';

export class UsageQueryDto {
  @ApiPropertyOptional({ format: 'date-time', example: '2026-11-01T00:00:00Z', description: 'Start of the window (inclusive); default: 30 days before `end`' })
  @IsOptional()
  @MaxLength(40)
  @IsISO8601({ strict: true, strictSeparator: true })
  start?: string;

  @ApiPropertyOptional({ format: 'date-time', example: '2026-12-01T00:00:00Z', description: 'End of the window (exclusive); default: now. Usage is counted up to now at most' })
  @IsOptional()
  @MaxLength(40)
  @IsISO8601({ strict: true, strictSeparator: true })
  end?: string;
}

export class GpuModelUsageDto {
  @ApiProperty({ example: 'h100-80gb' })
  gpu_model: string;

  @ApiProperty({ example: 48, description: 'GPU-hours held: whole GPUs × hours, a fractional VM counted by its weight' })
  gpu_hours: number;
}

export class VmUsageDto {
  @ApiProperty({ format: 'uuid', example: '01a21a6e-40d3-7000-852f-8c4b37264b28' })
  vm_id: string;

  @ApiProperty({ example: 'trainer' })
  name: string;

  @ApiProperty({ nullable: true, type: String, example: 'h100-80gb' })
  gpu_model: string | null;

  @ApiProperty({ nullable: true, type: String, example: null, description: 'A fractional VM: its MIG profile or vGPU size' })
  gpu_profile: string | null;

  @ApiProperty({ example: 24, description: 'Hours running within the window' })
  vm_hours: number;

  @ApiProperty({ example: 48, description: 'GPU-hours held within the window (a stopped VM keeps its GPUs; a shelved one gives them back)' })
  gpu_hours: number;
}

export class UsageReportDto {
  @ApiProperty({ format: 'uuid', example: '01a21a6e-3f1c-7000-8a51-4b0c6f3e2d19' })
  user_id: string;

  @ApiProperty({ format: 'date-time', example: '2026-11-01T00:00:00.000Z' })
  start: string;

  @ApiProperty({ format: 'date-time', example: '2026-12-01T00:00:00.000Z', description: 'The end asked for, or now if that is earlier' })
  end: string;

  @ApiProperty({ example: 24, description: 'Hours VMs ran within the window, summed' })
  vm_hours: number;

  @ApiProperty({ example: 48, description: 'GPU-hours held within the window, summed over models' })
  gpu_hours: number;

  @ApiProperty({ type: [GpuModelUsageDto] })
  gpu_hours_by_model: GpuModelUsageDto[];

  @ApiProperty({ type: [VmUsageDto], description: 'Every VM that ran or held GPUs within the window, most GPU-hours first' })
  vms: VmUsageDto[];
}
