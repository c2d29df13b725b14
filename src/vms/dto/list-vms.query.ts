import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsEnum, IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { VmStatus } from '../vm.entity';

export class ListVmsQueryDto {
  @ApiPropertyOptional({ enum: VmStatus, enumName: 'VmStatus', description: 'Only VMs in this status; deleted VMs are listed only when asked for' })
  @IsOptional()
  @IsEnum(VmStatus)
  status?: VmStatus;

  @ApiPropertyOptional({ example: 'test', description: 'Only VMs carrying this label' })
  @IsOptional()
  @IsString()
  @MaxLength(63)
  label?: string;

  @ApiPropertyOptional({ minimum: 1, maximum: 200, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  limit?: number;

  @ApiPropertyOptional({ description: 'The next_cursor of the previous page' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  cursor?: string;
}
