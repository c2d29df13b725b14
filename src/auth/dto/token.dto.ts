import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, Length, MaxLength } from 'class-validator';

/** The OAuth2 password-grant form (application/x-www-form-urlencoded), as the original API took it. */
export class TokenRequestDto {
  @ApiProperty({ example: 'testuser' })
  @IsString()
  @Length(1, 64)
  username: string;

  @ApiProperty({ example: 'testpassword', format: 'password' })
  @IsString()
  @Length(1, 1024)
  password: string;

  @ApiPropertyOptional({ enum: ['password'], enumName: 'GrantType', description: 'Accepted for OAuth2 clients' })
  @IsOptional()
  @IsIn(['password'])
  grant_type?: string;

  @ApiPropertyOptional({ description: 'Accepted for OAuth2 clients; ignored', example: '' })
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  scope?: string;

  @ApiPropertyOptional({ description: 'Accepted for OAuth2 clients; ignored', example: 'vmplane-cli' })
  @IsOptional()
  @IsString()
  @MaxLength(255)
  client_id?: string;

  @ApiPropertyOptional({ description: 'Accepted for OAuth2 clients; ignored', example: '' })
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  client_secret?: string;
}

export enum TokenType {
  Bearer = 'bearer',
}

export class TokenResponseDto {
  @ApiProperty({ description: 'An HS256 JWT', example: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwMTlhYmNkZSIsInJvbGUiOiJtZW1iZXIifQ.c2lnbmF0dXJl' })
  access_token: string;

  @ApiProperty({ enum: TokenType, enumName: 'TokenType', example: TokenType.Bearer })
  token_type: TokenType;

  @ApiProperty({ description: 'Seconds until the token expires', example: 3600 })
  expires_in: number;
}
