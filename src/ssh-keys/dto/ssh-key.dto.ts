import { ApiProperty } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsString, Matches, MaxLength, MinLength } from 'class-validator';
import { IMAGE_NAME } from '@vmplane/sdk';
import { NoControlCharacters } from '../../common/no-control-characters.decorator';

/** Names of keys follow the image names' rule: they end up in volume and cloud-init text, so a plain token. */
export const SSH_KEY_NAME = IMAGE_NAME;
export const SSH_KEY_NAME_MESSAGE = 'must be 1–64 letters, digits, ".", "_" or "-", starting with a letter or digit';
/** An RSA 16384-bit key is about 2.8 KB; 16 KiB is plenty and bounds the parser's work. */
export const SSH_PUBLIC_KEY_MAX_LENGTH = 16_384;

export class AddSshKeyDto {
  @ApiProperty({ example: 'laptop', maxLength: 64 })
  @IsString()
  @Matches(SSH_KEY_NAME, { message: SSH_KEY_NAME_MESSAGE })
  name: string;

  @ApiProperty({
    example: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop',
    maxLength: SSH_PUBLIC_KEY_MAX_LENGTH,
    description: 'One OpenSSH public key line, as in ~/.ssh/id_ed25519.pub (surrounding whitespace is ignored)',
  })
  @Transform(({ value }) => (typeof value === 'string' ? value.trim() : value))
  @IsString()
  @MinLength(1)
  @MaxLength(SSH_PUBLIC_KEY_MAX_LENGTH)
  @NoControlCharacters()
  public_key: string;
}

export class SshKeyResponseDto {
  @ApiProperty({ format: 'uuid', example: '019abcde-1234-7000-8000-0123456789ab' })
  id: string;

  @ApiProperty({ example: 'laptop' })
  name: string;

  @ApiProperty({ example: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop' })
  public_key: string;

  @ApiProperty({ example: 'ed25519', description: 'rsa, ecdsa or ed25519' })
  type: string;

  @ApiProperty({ example: 'SHA256:ar1hPOm8ED6Xcm4ZJHbRAi7ht4kPQRS2bvD1JgVwKOU', description: 'As `ssh-keygen -lf` prints it' })
  fingerprint: string;

  @ApiProperty({ nullable: true, type: String, example: 'alice@laptop' })
  comment: string | null;

  @ApiProperty({ format: 'date-time', example: '2026-11-26T23:26:55.123Z' })
  created_at: string;
}

export class SshKeyListDto {
  @ApiProperty({ type: [SshKeyResponseDto] })
  items: SshKeyResponseDto[];
}
