import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  ArrayUnique,
  IsByteLength,
  IsArray,
  IsInt,
  IsIP,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  ValidateIf,
} from 'class-validator';
import { IMAGE_NAME, MAX_SSH_KEYS, USER_DATA_MAX_BYTES } from '@vmplane/sdk';
import { Labels } from '../../common/labels.decorator';
import { IMAGE_NAME_MESSAGE } from '../../images/dto/image.dto';
import { SSH_KEY_NAME, SSH_KEY_NAME_MESSAGE } from '../../ssh-keys/dto/ssh-key.dto';

export const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** A VM's name, wherever one is sent. */
export function VmName(required: boolean): PropertyDecorator {
  const doc = { example: 'test-vm', description: 'A DNS label: 1–63 lowercase letters, digits and hyphens, not starting or ending with a hyphen' };
  return applyDecorators(
    required ? ApiProperty(doc) : ApiPropertyOptional(doc),
    IsString(),
    Matches(DNS_LABEL, { message: 'must be a DNS label: 1–63 lowercase letters, digits and hyphens, not starting or ending with a hyphen' }),
  );
}

/** The original API's VM request, plus optional GPU and region fields. */
export class CreateVmDto {
  @VmName(true)
  name: string;

  @ApiProperty({ example: 2, minimum: 1, maximum: 256 })
  @IsInt()
  @Min(1)
  @Max(256)
  cpu_cores: number;

  @ApiProperty({ example: 4096, minimum: 256, maximum: 4_194_304, description: 'MiB' })
  @IsInt()
  @Min(256)
  @Max(4_194_304)
  memory: number;

  @ApiProperty({ example: 50, minimum: 1, maximum: 65_536, description: 'GiB' })
  @IsInt()
  @Min(1)
  @Max(65_536)
  disk_size: number;

  @ApiPropertyOptional({ example: '192.168.1.1', nullable: true, type: String, description: 'IPv4 or IPv6; unique among live VMs' })
  @IsOptional()
  @ValidateIf((_, value) => value !== null)
  @IsString()
  @IsIP(undefined, { message: 'must be a valid IPv4 or IPv6 address' })
  public_ip?: string | null;

  @IsOptional()
  @Labels(['test'])
  labels?: string[];

  @ApiPropertyOptional({ example: 1, minimum: 0, maximum: 8, default: 0 })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(8)
  gpu_count?: number;

  @ApiPropertyOptional({
    example: '3g.71gb',
    maxLength: 32,
    description:
      'A fractional GPU instead of gpu_count (give one of the two): a time-sliced vGPU size (`1/8`, `1/4`, `1/2`, `1`) on a GPU in vgpu mode, or a MIG profile of the model (`3g.71gb` on h200-141gb, as `nvidia-smi mig -lgip` names it) on a GPU in mig mode. GET /capacity lists the profiles that fit now',
  })
  @IsOptional()
  @IsString()
  @Matches(/^[0-9a-z][0-9a-z./+]{0,31}$/, { message: 'must be a vGPU size like 1/4 or a MIG profile like 3g.71gb' })
  gpu_profile?: string;

  @ApiPropertyOptional({
    example: 'h100-80gb',
    maxLength: 64,
    description:
      'GPU model: its id (`h100-80gb`; GET /capacity lists the fleet\'s), or its name as people write it (`H100`, `NVIDIA A100 80GB`), which is read as the one id of the fleet with that name (and memory size, if given); a name matching none or several is refused with 422 unsatisfiable, listing the choices. The response gives the id. Any model when absent',
  })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9 ._/-]{0,63}$/, { message: 'must be a GPU model like h100-80gb or H100: letters, digits, spaces, ".", "_", "/" and "-", at most 64' })
  gpu_model?: string;

  @ApiPropertyOptional({ example: 'us-east-1', description: 'Place only in this region' })
  @IsOptional()
  @IsString()
  @Matches(/^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$/, { message: 'must be a region name' })
  region?: string;

  @ApiPropertyOptional({
    example: 1800,
    minimum: 1,
    maximum: 86_400,
    description:
      'With `Prefer: respond-async`: when nothing fits now, wait in the capacity queue of this GPU model and region for up to this many seconds (at most MAX_WAIT_FOR_CAPACITY_SECONDS) instead of failing',
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(86_400)
  wait_for_capacity_seconds?: number;

  @ApiPropertyOptional({ example: 'debian-12', description: 'A registered image (GET /images) by name; DEFAULT_IMAGE when absent' })
  @IsOptional()
  @IsString()
  @Matches(IMAGE_NAME, { message: IMAGE_NAME_MESSAGE })
  image?: string;

  @ApiPropertyOptional({
    example: ['laptop'],
    type: [String],
    maxItems: MAX_SSH_KEYS,
    description: `Names of your SSH keys (POST /ssh-keys), at most ${MAX_SSH_KEYS}; cloud-init installs them for the image's default user`,
  })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_SSH_KEYS)
  @ArrayUnique({ message: 'must not name a key twice' })
  @IsString({ each: true })
  @Matches(SSH_KEY_NAME, { each: true, message: SSH_KEY_NAME_MESSAGE })
  ssh_keys?: string[];

  @ApiPropertyOptional({
    example: '#cloud-config\npackages: [htop]\n',
    maxLength: USER_DATA_MAX_BYTES,
    description: `cloud-init user data, at most ${USER_DATA_MAX_BYTES} bytes in UTF-8 (16 KiB, as on EC2); the SSH keys are merged into it. Kept with the VM, never returned (responses show user_data_bytes)`,
  })
  @IsOptional()
  @IsString()
  @IsByteLength(0, USER_DATA_MAX_BYTES, { message: `must be at most ${USER_DATA_MAX_BYTES} bytes (16 KiB) in UTF-8` })
  user_data?: string;
}
