import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsEnum,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { Labels } from '../../common/labels.decorator';
import { NoControlCharacters } from '../../common/no-control-characters.decorator';
import { OptionalNotNull } from '../../common/validation';
import { LIBVIRT_URI } from '../../config/app-config';
import { HostState, SETTABLE_HOST_STATES, SettableHostState } from '../host.entity';

const HOST_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
const REGION = /^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$/;
const GPU_MODEL = /^[a-z0-9]+(-[a-z0-9]+)*-\d+gb$/;

/** The checks a host's name gets wherever one is sent. */
function HostName(): PropertyDecorator {
  return applyDecorators(IsString(), Matches(HOST_NAME, { message: 'must be a lowercase DNS name' }));
}

/** A host's libvirt URI, wherever one is sent: optional, at most 512 characters. */
function HypervisorUri(): PropertyDecorator {
  return applyDecorators(
    ApiPropertyOptional({
      example: 'qemu+ssh://ops@gpu-h100-01/system',
      maxLength: 512,
      nullable: true,
      type: String,
      description: "The libvirt URI the host's VMs are driven through (libvirt driver); absent: LIBVIRT_DEFAULT_URI",
    }),
    IsOptional(),
    IsString(),
    MaxLength(512),
    Matches(LIBVIRT_URI, { message: 'must be a libvirt URI such as qemu:///system or qemu+ssh://user@host/system' }),
  );
}

/** The states an admin may set; `removed` comes only from DELETE /hosts/{id}. */
function SettableState(documented: { default?: HostState; description?: string }): PropertyDecorator {
  return applyDecorators(ApiPropertyOptional({ enum: SETTABLE_HOST_STATES, enumName: 'SettableHostState', ...documented }), IsIn(SETTABLE_HOST_STATES));
}

export enum MigMode {
  Enabled = 'enabled',
  Disabled = 'disabled',
  Unsupported = 'unsupported',
}

export enum GpuSharingModeDto {
  Passthrough = 'passthrough',
  Vgpu = 'vgpu',
  Mig = 'mig',
}

export class RegisterGpuDto {
  @ApiPropertyOptional({ description: 'Device index on the host; defaults to the position in the list', example: 0 })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(63)
  index?: number;

  @ApiProperty({ example: 'NVIDIA H100 80GB HBM3', minLength: 1, maxLength: 128 })
  @IsString()
  @Length(1, 128)
  @NoControlCharacters()
  product_name: string;

  @ApiProperty({ example: 81559, description: 'Framebuffer memory as the driver reports it' })
  @IsInt()
  @Min(1)
  @Max(10_000_000)
  memory_mib: number;

  @ApiProperty({ example: '00000000:18:00.0' })
  @IsString()
  @Matches(/^[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/, { message: 'must be a PCI bus id like 00000000:18:00.0' })
  pci_address: string;

  @ApiProperty({ example: 'GPU-3b6c5a73-17c2-f319-c5b0-563912c55e13', minLength: 1, maxLength: 64 })
  @IsString()
  @Length(1, 64)
  @NoControlCharacters()
  uuid: string;

  @ApiPropertyOptional({ example: 'h100-80gb', description: 'Canonical model id; derived from product_name and memory_mib when absent' })
  @IsOptional()
  @IsString()
  @Matches(GPU_MODEL, { message: 'must be a model id like h100-80gb' })
  model?: string;

  @ApiPropertyOptional({ enum: MigMode, enumName: 'MigMode', default: MigMode.Disabled })
  @IsOptional()
  @IsEnum(MigMode)
  mig_mode?: MigMode;

  @ApiPropertyOptional({
    enum: GpuSharingModeDto,
    enumName: 'GpuSharingMode',
    default: GpuSharingModeDto.Passthrough,
    description: 'How VMs get the GPU: whole (passthrough), as time-sliced vGPUs, or as MIG instances (models with MIG profiles only)',
  })
  @IsOptional()
  @IsEnum(GpuSharingModeDto)
  sharing_mode?: GpuSharingModeDto;
}

export class RegisterHostDto {
  @ApiProperty({ example: 'gpu-h100-01' })
  @HostName()
  name: string;

  @ApiProperty({ example: 'us-east-1' })
  @IsString()
  @Matches(REGION, { message: 'must be 1–64 lowercase letters, digits or hyphens' })
  region: string;

  @ApiProperty({ example: 192 })
  @IsInt()
  @Min(1)
  @Max(100_000)
  cpu_cores: number;

  @ApiProperty({ example: 2_097_152 })
  @IsInt()
  @Min(256)
  @Max(2_000_000_000)
  memory_mib: number;

  @ApiProperty({ example: 30_000 })
  @IsInt()
  @Min(1)
  @Max(100_000_000)
  disk_gib: number;

  @IsOptional()
  @SettableState({ default: HostState.Active })
  state?: SettableHostState;

  @IsOptional()
  @Labels(['rack-a12', 'nvlink'])
  labels?: string[];

  @HypervisorUri()
  hypervisor_uri?: string;

  @ApiPropertyOptional({ type: [RegisterGpuDto], default: [] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(64)
  @ValidateNested({ each: true })
  @Type(() => RegisterGpuDto)
  gpus?: RegisterGpuDto[];
}

export class ImportHostQueryDto {
  @ApiProperty({ example: 'gpu-h200-01' })
  @IsString()
  @Matches(HOST_NAME, { message: 'must be a lowercase DNS name' })
  name: string;

  @ApiPropertyOptional({ example: 'us-east-1', default: 'default' })
  @IsOptional()
  @IsString()
  @Matches(REGION, { message: 'must be 1–64 lowercase letters, digits or hyphens' })
  region?: string;

  @ApiProperty({ example: 16 })
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100_000)
  cpu_cores: number;

  @ApiProperty({ example: 131072 })
  @Type(() => Number)
  @IsInt()
  @Min(256)
  @Max(2_000_000_000)
  memory_mib: number;

  @ApiProperty({ example: 2000 })
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100_000_000)
  disk_gib: number;

  @HypervisorUri()
  hypervisor_uri?: string;
}

/** An admin's change to a host; each field is optional, none may be null. */
export class UpdateHostDto {
  @ApiPropertyOptional({ example: 'gpu-h100-01', description: 'Unique among hosts that are not removed' })
  @OptionalNotNull()
  @HostName()
  name?: string;

  @OptionalNotNull()
  @Labels(['rack-a12', 'nvlink'])
  labels?: string[];

  @OptionalNotNull()
  @SettableState({ description: 'draining or down: no new placements; its VMs keep running' })
  state?: SettableHostState;
}

export class ListHostsQueryDto {
  @ApiPropertyOptional({ type: Boolean, default: false, description: 'true: removed hosts too' })
  @IsOptional()
  @Transform(({ value }) => (value === 'true' ? true : value === 'false' ? false : value))
  @IsBoolean()
  include_removed?: boolean;
}

export class UpdateGpuDto {
  @ApiProperty({
    enum: GpuSharingModeDto,
    enumName: 'GpuSharingMode',
    example: GpuSharingModeDto.Mig,
    description: 'passthrough: whole GPUs (gpu_count); vgpu: time-sliced vGPUs of one size at a time; mig: MIG instances (only on models with MIG profiles)',
  })
  @IsEnum(GpuSharingModeDto)
  sharing_mode: GpuSharingModeDto;
}

export class GpuResponseDto {
  @ApiProperty({ format: 'uuid', example: '019abcde-1234-7000-8000-0123456789ab' })
  id: string;

  @ApiProperty({ example: 0 })
  index: number;

  @ApiProperty({ example: 'h100-80gb' })
  model: string;

  @ApiProperty({ example: 'NVIDIA H100 80GB HBM3' })
  product_name: string;

  @ApiProperty({ example: 81559 })
  memory_mib: number;

  @ApiProperty({ example: '00000000:18:00.0' })
  pci_address: string;

  @ApiProperty({ example: 'GPU-3b6c5a73-17c2-f319-c5b0-563912c55e13' })
  uuid: string;

  @ApiProperty({ enum: MigMode, enumName: 'MigMode' })
  mig_mode: MigMode;

  @ApiProperty({ type: String, format: 'uuid', nullable: true, description: 'The VM bound to this GPU, if any', example: null })
  vm_id: string | null;

  @ApiProperty({ enum: GpuSharingModeDto, enumName: 'GpuSharingMode', description: 'How VMs get this GPU (PATCH /hosts/{id}/gpus/{gpu_id} changes it while the GPU is idle)' })
  sharing_mode: GpuSharingModeDto;

  @ApiProperty({ type: String, nullable: true, example: null, description: 'vgpu mode: the one vGPU size the GPU holds now; null when it holds none' })
  vgpu_profile: string | null;

  @ApiProperty({ example: 0, description: 'VMs holding a fractional part of the GPU (vgpu or mig mode)' })
  fractional_vms: number;
}

export class HostResourcesDto {
  @ApiProperty({ example: 192 })
  cpu_cores: number;

  @ApiProperty({ example: 2_097_152 })
  memory_mib: number;

  @ApiProperty({ example: 30_000 })
  disk_gib: number;
}

export class HostResponseDto {
  @ApiProperty({ format: 'uuid', example: '019abcde-1234-7000-8000-0123456789ab' })
  id: string;

  @ApiProperty({ example: 'gpu-h100-01' })
  name: string;

  @ApiProperty({ example: 'us-east-1' })
  region: string;

  @ApiProperty({ enum: HostState, enumName: 'HostState', description: 'removed: taken out of the fleet by DELETE; kept, never placed on' })
  state: HostState;

  @ApiProperty({ type: [String], example: ['rack-a12', 'nvlink'] })
  labels: string[];

  @ApiProperty({ example: 192 })
  cpu_cores: number;

  @ApiProperty({ example: 2_097_152 })
  memory_mib: number;

  @ApiProperty({ example: 30_000 })
  disk_gib: number;

  @ApiProperty({ nullable: true, type: String, example: 'qemu+ssh://ops@gpu-h100-01/system', description: "The libvirt URI the host's VMs are driven through; null: the driver's default (hosts are admin-only)" })
  hypervisor_uri: string | null;

  @ApiProperty({
    nullable: true,
    type: String,
    format: 'date-time',
    example: null,
    description:
      "Since when the host's hypervisor has not answered (a reconciliation pass could not list it, or a create could not reach it); null while it answers. Placement leaves the host out until a pass finds it answering again",
  })
  unreachable_since: string | null;

  @ApiProperty({ type: HostResourcesDto, description: 'Claimed by VMs placed here' })
  used: HostResourcesDto;

  @ApiProperty({ type: [GpuResponseDto] })
  gpus: GpuResponseDto[];

  @ApiProperty({ format: 'date-time', example: '2026-11-26T23:26:55.123Z' })
  created_at: string;

  @ApiProperty({ format: 'date-time', example: '2026-11-26T23:26:55.123Z' })
  updated_at: string;
}

export class HostListDto {
  @ApiProperty({ type: [HostResponseDto] })
  items: HostResponseDto[];
}
