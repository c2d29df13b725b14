import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsEnum, IsInt, IsOptional, IsString, Length, Matches, Max, Min, ValidateIf } from 'class-validator';
import { UserRole } from '../../common/user-role';

export class CreateUserDto {
  @ApiProperty({ example: 'alice', description: '3–64 characters: lowercase letters, digits, ".", "_" and "-"' })
  @IsString()
  @Matches(/^[a-z0-9][a-z0-9._-]{2,63}$/, { message: 'must be 3–64 characters of lowercase letters, digits, ".", "_" or "-"' })
  username: string;

  @ApiProperty({ example: 'correct horse battery staple', format: 'password', minLength: 8, maxLength: 1024 })
  @IsString()
  @Length(8, 1024)
  password: string;

  @ApiPropertyOptional({ enum: UserRole, enumName: 'UserRole', example: UserRole.Member, default: UserRole.Member })
  @IsOptional()
  @IsEnum(UserRole)
  role?: UserRole;
}

/** Each limit is optional; null resets it to the configured default. */
export class SetQuotaDto {
  @ApiPropertyOptional({ type: Number, nullable: true, example: 64 })
  @IsOptional()
  @ValidateIf((_, value) => value !== null)
  @IsInt()
  @Min(0)
  @Max(10_000_000)
  vcpus?: number | null;

  @ApiPropertyOptional({ type: Number, nullable: true, example: 524288 })
  @IsOptional()
  @ValidateIf((_, value) => value !== null)
  @IsInt()
  @Min(0)
  @Max(2_000_000_000)
  memory_mib?: number | null;

  @ApiPropertyOptional({ type: Number, nullable: true, example: 8, description: 'Whole GPUs (stored as gpus × 1000 milli-GPUs); give this or gpu_milli' })
  @IsOptional()
  @ValidateIf((_, value) => value !== null)
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  gpus?: number | null;

  @ApiPropertyOptional({ type: Number, nullable: true, example: 2500, description: 'GPUs in milli-GPUs (a 3g of a 7-slice MIG GPU weighs 429, a 1/4 vGPU 250); give this or gpus' })
  @IsOptional()
  @ValidateIf((_, value) => value !== null)
  @IsInt()
  @Min(0)
  @Max(1_000_000_000)
  gpu_milli?: number | null;

  @ApiPropertyOptional({ type: Number, nullable: true, example: 20 })
  @IsOptional()
  @ValidateIf((_, value) => value !== null)
  @IsInt()
  @Min(0)
  @Max(10_000_000)
  vms?: number | null;
}

export class ResourceAmountsDto {
  @ApiProperty({ example: 64 })
  vcpus: number;

  @ApiProperty({ example: 524288 })
  memory_mib: number;

  @ApiProperty({ example: 8, description: 'GPUs; fractional when fractional GPUs (gpu_profile) are held' })
  gpus: number;

  @ApiProperty({ example: 8000, description: 'The same GPUs in milli-GPUs (a whole GPU is 1000), what quotas count' })
  gpu_milli: number;

  @ApiProperty({ example: 20 })
  vms: number;
}

export class UserResponseDto {
  @ApiProperty({ format: 'uuid', example: '019abcde-1234-7000-8000-0123456789ab' })
  id: string;

  @ApiProperty({ example: 'testuser' })
  username: string;

  @ApiProperty({ enum: UserRole, enumName: 'UserRole' })
  role: UserRole;

  @ApiProperty({ example: false, description: 'A disabled user cannot sign in, and their tokens do not work' })
  disabled: boolean;

  @ApiProperty({ type: ResourceAmountsDto, description: 'Limits in force (per-user values or the defaults)' })
  quota: ResourceAmountsDto;

  @ApiProperty({ type: ResourceAmountsDto, description: 'What the user holds now' })
  usage: ResourceAmountsDto;

  @ApiProperty({ format: 'date-time', example: '2026-11-26T23:26:55.123Z' })
  created_at: string;

  @ApiProperty({ format: 'date-time', example: '2026-11-26T23:26:55.123Z' })
  updated_at: string;
}
