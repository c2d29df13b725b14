import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, Max, Min } from 'class-validator';

export const CONSOLE_MAX_BYTES = 65_536;
export const CONSOLE_DEFAULT_BYTES = 16_384;

export class ConsoleQueryDto {
  @ApiPropertyOptional({ minimum: 1, maximum: CONSOLE_MAX_BYTES, default: CONSOLE_DEFAULT_BYTES, description: 'How many bytes of the end of the console log to return' })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(CONSOLE_MAX_BYTES)
  bytes?: number;
}
