import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsEnum, IsOptional, IsString, Length } from 'class-validator';
import { UserRole } from '../../common/user-role';
import { OptionalNotNull } from '../../common/validation';
import { UserResponseDto } from './user.dto';

/** An admin's change to a user; each field is optional. Disabling revokes the user's tokens at once. */
export class UpdateUserDto {
  @ApiPropertyOptional({ enum: UserRole, enumName: 'UserRole', example: UserRole.Member, description: 'Takes effect on existing tokens at once' })
  @OptionalNotNull()
  @IsEnum(UserRole)
  role?: UserRole;

  @ApiPropertyOptional({ example: true, description: 'true: the user cannot sign in and every token they hold stops working' })
  @OptionalNotNull()
  @IsBoolean()
  disabled?: boolean;

  @ApiPropertyOptional({
    example: 'a new passphrase for them',
    format: 'password',
    minLength: 8,
    maxLength: 1024,
    description: 'Sets a new password (a reset, for a user who lost theirs): every token they hold stops working',
  })
  @OptionalNotNull()
  @IsString()
  @Length(8, 1024)
  password?: string;
}

export class ChangePasswordDto {
  @ApiProperty({ example: 'correct horse battery staple', format: 'password', maxLength: 1024 })
  @IsString()
  @Length(1, 1024)
  current_password: string;

  @ApiProperty({ example: 'a longer and newer passphrase', format: 'password', minLength: 8, maxLength: 1024 })
  @IsString()
  @Length(8, 1024)
  new_password: string;
}

export class UserPageDto {
  @ApiProperty({ type: [UserResponseDto] })
  items: UserResponseDto[];

  @ApiProperty({ nullable: true, type: String, description: 'Pass as ?cursor= for the next page; null on the last page', example: null })
  next_cursor: string | null;
}
