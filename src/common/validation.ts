import { ArgumentMetadata, Injectable, ValidationError, ValidationPipe } from '@nestjs/common';
import { FieldError, ValidationFailedError } from './domain-errors';

/** Fields a client may see but never set; naming them as read-only is clearer than "unknown". */
const READ_ONLY_FIELDS = new Set([
  'id',
  'status',
  'status_reason',
  'owner',
  'owner_id',
  'host',
  'gpus',
  'hypervisor_id',
  'created_at',
  'updated_at',
  'deleted_at',
]);

export function flattenValidationErrors(errors: ValidationError[], prefix = ''): FieldError[] {
  const out: FieldError[] = [];
  for (const error of errors) {
    const field = prefix ? `${prefix}.${error.property}` : error.property;
    const constraints = Object.keys(error.constraints ?? {});
    if (error.value === undefined && constraints.length > 0 && !constraints.includes('whitelistValidation')) {
      out.push({ field, message: 'is required' });
      continue;
    }
    for (const [rule, message] of Object.entries(error.constraints ?? {})) {
      if (rule === 'whitelistValidation') {
        out.push({ field, message: READ_ONLY_FIELDS.has(error.property) ? 'is read-only' : 'is not a known field' });
      } else {
        out.push({ field, message: message.startsWith(`${error.property} `) ? message.slice(error.property.length + 1) : message });
      }
    }
    if (error.children?.length) out.push(...flattenValidationErrors(error.children, field));
  }
  return out;
}

const PRIMITIVES = new Set<unknown>([String, Number, Boolean, Array, Object]);

/**
 * class-validator on every body and query: unknown properties are refused
 * (400 naming them), values are not coerced except where a DTO says so, and
 * the body must be a JSON object.
 */
@Injectable()
export class StrictValidationPipe extends ValidationPipe {
  constructor() {
    super({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      stopAtFirstError: true,
      validationError: { target: false, value: true },
      exceptionFactory: (errors) => new ValidationFailedError(flattenValidationErrors(errors)),
    });
  }

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type === 'body' && metadata.metatype && !PRIMITIVES.has(metadata.metatype)) {
      if (value === undefined || value === null) value = {};
      if (typeof value !== 'object' || Array.isArray(value)) {
        throw new ValidationFailedError([{ field: 'body', message: 'must be a JSON object' }]);
      }
    }
    return super.transform(value, metadata);
  }
}
