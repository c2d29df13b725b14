import { ArgumentMetadata, Injectable, ValidationError, ValidationPipe, applyDecorators } from '@nestjs/common';
import { IsDefined, ValidateIf, type ValidationOptions } from 'class-validator';
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

/**
 * Failed checks that say what type a value must have, most basic first. When
 * a value fails one of these, its other failures (ranges, lengths, patterns)
 * are noise: "cpu_cores": "2" must hear "must be an integer", not "must not
 * be greater than 256". Choosing here rather than relying on decorator order
 * keeps every DTO right, including ones not written yet. A null where a
 * value must be (OptionalNotNull) says so before any type.
 */
const TYPE_CHECKS = ['isDefined', 'isArray', 'isObject', 'nestedValidation', 'isInt', 'isNumber', 'isBoolean', 'isString', 'isEnum', 'isIn'];

/** class-validator's wording where it does not say the type plainly. */
const MESSAGES: Record<string, string> = { nestedValidation: 'must be an object' };

function mainFailure(constraints: Record<string, string>): [rule: string, message: string] {
  const rules = Object.keys(constraints);
  let chosen = rules[0];
  let best = TYPE_CHECKS.length;
  for (const rule of rules) {
    const rank = TYPE_CHECKS.indexOf(rule);
    if (rank !== -1 && rank < best) {
      best = rank;
      chosen = rule;
    }
  }
  return [chosen, MESSAGES[chosen] ?? constraints[chosen].replace('an integer number', 'an integer')];
}

/** "labels" + "each value in labels must be a string" → "each value must be a string"; "cpu_cores must be …" → "must be …". */
function messageFor(property: string, message: string): string {
  if (message.startsWith(`each value in ${property} `)) return `each value ${message.slice(`each value in ${property} `.length)}`;
  return message.startsWith(`${property} `) ? message.slice(property.length + 1) : message;
}

export function flattenValidationErrors(errors: ValidationError[], prefix = ''): FieldError[] {
  const out: FieldError[] = [];
  for (const error of errors) {
    const field = prefix ? `${prefix}.${error.property}` : error.property;
    const constraints = error.constraints ?? {};
    if (Object.keys(constraints).length > 0) {
      const [rule, message] = mainFailure(constraints);
      if (rule === 'whitelistValidation') {
        out.push({ field, message: READ_ONLY_FIELDS.has(error.property) ? 'is read-only' : 'is not a known field' });
      } else if (error.value === undefined) {
        out.push({ field, message: 'is required' });
        continue;
      } else {
        out.push({ field, message: messageFor(error.property, message) });
        // A value of the wrong type has no fields worth reporting (gpus: {} is not a GPU list).
        if (TYPE_CHECKS.includes(rule)) continue;
      }
    }
    if (error.children?.length) out.push(...flattenValidationErrors(error.children, field));
  }
  return out;
}

/**
 * A field that may be left out but, when sent, must hold a value: `null` is
 * refused (400 naming the field) instead of slipping through as "absent", as
 * class-validator's @IsOptional lets it. The field's own checks run only when
 * it is sent.
 */
export function OptionalNotNull(options?: ValidationOptions): PropertyDecorator {
  return applyDecorators(
    ValidateIf((_object, value) => value !== undefined),
    IsDefined({ message: 'must not be null', ...options }),
  );
}

const PRIMITIVES = new Set<unknown>([String, Number, Boolean, Array, Object]);

/**
 * class-validator on every body and query: unknown properties are refused
 * (400 naming them), values are not coerced except where a DTO says so, the
 * body must be a JSON object, and each field reports one failure, its type
 * first (see TYPE_CHECKS).
 */
@Injectable()
export class StrictValidationPipe extends ValidationPipe {
  constructor() {
    super({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
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

const strictPipe = new StrictValidationPipe();

/**
 * The validation a request body gets, for input that reaches a service
 * another way (a DTO built from an uploaded document): same rules, same 400.
 */
export async function validateInput<T extends object>(type: new () => T, plain: unknown): Promise<T> {
  return (await strictPipe.transform(plain, { type: 'body', metatype: type, data: '' })) as T;
}
