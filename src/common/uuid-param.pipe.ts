import { ArgumentMetadata, Injectable, PipeTransform } from '@nestjs/common';
import { ValidationFailedError } from './domain-errors';
import { UUID_PATTERN } from './id-generator';

/** Validates a path parameter as a UUID, naming the parameter in the 400. */
@Injectable()
export class UuidParam implements PipeTransform<string, string> {
  transform(value: string, metadata: ArgumentMetadata): string {
    if (!UUID_PATTERN.test(value)) {
      throw new ValidationFailedError([{ field: metadata.data ?? 'id', message: 'must be a UUID' }]);
    }
    return value.toLowerCase();
  }
}
