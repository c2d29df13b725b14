import { applyDecorators } from '@nestjs/common';
import { ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsString, MaxLength, MinLength } from 'class-validator';
import { NoControlCharacters } from './no-control-characters.decorator';

/** Labels, on a VM or a host: at most 32 of 1–63 characters, no control characters. Optionality is the DTO's. */
export function Labels(example: string[]): PropertyDecorator {
  return applyDecorators(
    ApiPropertyOptional({ example, type: [String], maxItems: 32, description: 'At most 32 labels of 1–63 characters, no control characters' }),
    IsArray(),
    ArrayMaxSize(32),
    IsString({ each: true }),
    MinLength(1, { each: true }),
    MaxLength(63, { each: true }),
    NoControlCharacters({ each: true }),
  );
}
