import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsInt, IsOptional, Max, Min } from 'class-validator';

export class RebootVmDto {
  @ApiPropertyOptional({ example: false, default: false, description: 'true: a reset (the reset button); false: ask the guest to reboot' })
  @IsOptional()
  @IsBoolean()
  hard?: boolean;
}

export class UnshelveVmDto {
  @ApiPropertyOptional({
    example: 1800,
    minimum: 1,
    maximum: 86_400,
    description: 'With `Prefer: respond-async`: when nothing fits now, wait in the capacity queue for up to this many seconds (at most MAX_CAPACITY_WAIT_SECONDS)',
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(86_400)
  wait_for_capacity_seconds?: number;
}

/** The new size; each field is optional, and at least one must change. */
export class ResizeVmDto {
  @ApiPropertyOptional({ example: 8, minimum: 1, maximum: 256 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(256)
  cpu_cores?: number;

  @ApiPropertyOptional({ example: 32768, minimum: 256, maximum: 4_194_304, description: 'MiB' })
  @IsOptional()
  @IsInt()
  @Min(256)
  @Max(4_194_304)
  memory?: number;

  @ApiPropertyOptional({ example: 2, minimum: 0, maximum: 8, description: 'GPUs of the model the VM already has (a CPU-only VM may get GPUs only while shelved)' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(8)
  gpu_count?: number;
}
