import { ApiProperty } from '@nestjs/swagger';
import { IsIn, IsString, Matches, MaxLength } from 'class-validator';
import { IMAGE_NAME } from '@vmplane/sdk';
import { NoControlCharacters } from '../../common/no-control-characters.decorator';
import type { ImageFormat } from '../image.entity';

export const IMAGE_FORMATS: ImageFormat[] = ['qcow2', 'raw'];
export const IMAGE_NAME_MESSAGE = 'must be 1–64 letters, digits, ".", "_" or "-", starting with a letter or digit';

export class RegisterImageDto {
  @ApiProperty({ example: 'debian-12', maxLength: 64, description: 'Unique; 1–64 letters, digits, ".", "_" or "-"' })
  @IsString()
  @Matches(IMAGE_NAME, { message: IMAGE_NAME_MESSAGE })
  name: string;

  @ApiProperty({ example: '/var/lib/vmplane/images/debian-12.qcow2', maxLength: 4096, description: 'Absolute path of a readable regular file on the control plane' })
  @IsString()
  @MaxLength(4096)
  @Matches(/^\//, { message: 'must be an absolute path' })
  @NoControlCharacters()
  path: string;

  @ApiProperty({ enum: IMAGE_FORMATS, enumName: 'ImageFormat', example: 'qcow2' })
  @IsIn(IMAGE_FORMATS)
  format: ImageFormat;
}

export class ImageResponseDto {
  @ApiProperty({ format: 'uuid', example: '019abcde-1234-7000-8000-0123456789ab' })
  id: string;

  @ApiProperty({ example: 'debian-12' })
  name: string;

  @ApiProperty({ example: '/var/lib/vmplane/images/debian-12.qcow2' })
  path: string;

  @ApiProperty({ enum: IMAGE_FORMATS, enumName: 'ImageFormat', example: 'qcow2' })
  format: ImageFormat;

  @ApiProperty({ format: 'date-time', example: '2026-11-26T23:26:55.123Z' })
  created_at: string;

  @ApiProperty({ format: 'date-time', example: '2026-11-26T23:26:55.123Z' })
  updated_at: string;
}

export class ImageListDto {
  @ApiProperty({ type: [ImageResponseDto] })
  items: ImageResponseDto[];
}
