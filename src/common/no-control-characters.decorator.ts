import { Matches, ValidationOptions } from 'class-validator';

/** No C0 control, DEL or C1 control: the characters a terminal acts on instead of printing. */
const PRINTABLE = /^[^\u0000-\u001f\u007f-\u009f]*$/;

/**
 * Refuses control characters in free text that other people's screens show
 * (labels, product names): an escape sequence in a label would otherwise
 * retitle, clear or recolour an admin's terminal when the CLI lists it.
 */
export function NoControlCharacters(options: ValidationOptions = {}): PropertyDecorator {
  return Matches(PRINTABLE, { message: 'must not contain control characters (U+0000–U+001F, U+007F–U+009F)', ...options });
}
