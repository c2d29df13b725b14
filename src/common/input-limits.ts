import { FieldError } from './domain-errors';

/**
 * The shape every request body and query string must fit, on every route,
 * before anything builds objects or errors per key. The largest legitimate
 * body (POST /hosts: 64 GPUs of 7 fields) has depth 3 and about 520 entries.
 */
export interface InputLimits {
  maxDepth: number;
  maxEntries: number;
  maxTotalEntries: number;
}

export const INPUT_LIMITS: Readonly<InputLimits> = {
  /** Objects and arrays nested inside each other, the body itself included. */
  maxDepth: 8,
  /** Keys of one object, or elements of one array. */
  maxEntries: 256,
  /** Keys and elements of the whole body, at every depth. */
  maxTotalEntries: 2048,
};

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const AMPERSAND = 0x26;
const MAX_KEY_IN_PATH = 64;

interface Level {
  isArray: boolean;
  entries: number;
  expectKey: boolean;
  keyStart: number;
  keyEnd: number;
}

/**
 * Scans a JSON body for depth and width without decoding or parsing it, one
 * pass over the bytes and no recursion, stopping at the first limit crossed:
 * a 1 MiB body of 78,000 keys is refused after reading its first 256. (In
 * UTF-8 every byte of a multi-byte character is >= 0x80, so the structural
 * characters can be found byte by byte.) Malformed JSON is left to the parser.
 */
export function scanJsonShape(text: Buffer, limits: Readonly<InputLimits> = INPUT_LIMITS): FieldError | null {
  const stack: Level[] = [];
  let total = 0;
  let entryPending = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
    const top = stack[stack.length - 1];
    if (entryPending && c !== CLOSE_OBJECT && c !== CLOSE_ARRAY && top) {
      entryPending = false;
      if (++top.entries > limits.maxEntries) {
        return { field: pathOf(text, stack, stack.length - 1), message: `has more than ${limits.maxEntries} ${top.isArray ? 'elements' : 'keys'}` };
      }
      if (++total > limits.maxTotalEntries) {
        return { field: 'body', message: `has more than ${limits.maxTotalEntries} keys and elements in all` };
      }
    }
    switch (c) {
      case QUOTE: {
        const end = closingQuote(text, i);
        if (top && top.expectKey) {
          top.expectKey = false;
          top.keyStart = i;
          top.keyEnd = end + 1;
        }
        i = end;
        break;
      }
      case OPEN_OBJECT:
      case OPEN_ARRAY:
        if (stack.length >= limits.maxDepth) {
          return { field: pathOf(text, stack, stack.length), message: `nests deeper than ${limits.maxDepth} levels of objects and arrays` };
        }
        stack.push({ isArray: c === OPEN_ARRAY, entries: 0, expectKey: c === OPEN_OBJECT, keyStart: -1, keyEnd: -1 });
        entryPending = true;
        break;
      case CLOSE_OBJECT:
      case CLOSE_ARRAY:
        stack.pop();
        entryPending = false;
        break;
      case COMMA:
        entryPending = true;
        if (top && !top.isArray) top.expectKey = true;
        break;
    }
  }
  return null;
}

/** Index of the quote that closes the string opened at `start`, or the last index when it never closes. */
function closingQuote(text: Buffer, start: number): number {
  let end = text.indexOf(QUOTE, start + 1);
  while (end !== -1) {
    let backslashes = 0;
    while (text[end - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return end;
    end = text.indexOf(QUOTE, end + 1);
  }
  return text.length - 1;
}

/** The field holding the container at `depth`, e.g. `labels[0][0]`; the body itself is `body`. */
function pathOf(text: Buffer, stack: Level[], depth: number): string {
  let path = '';
  for (let d = 0; d < depth; d++) {
    const level = stack[d];
    if (level.isArray) {
      path += `[${Math.max(0, level.entries - 1)}]`;
    } else {
      const key = decodeKey(text, level).slice(0, MAX_KEY_IN_PATH);
      path += path ? `.${key}` : key;
    }
  }
  return path || 'body';
}

function decodeKey(text: Buffer, level: Level): string {
  if (level.keyStart < 0) return '?';
  try {
    return String(JSON.parse(text.toString('utf8', level.keyStart, level.keyEnd)));
  } catch {
    return '?';
  }
}

/**
 * Counts the fields of a form body (`a=1&b=2`) without decoding it; repeated
 * names count once per occurrence. Stops as soon as the limit is crossed.
 */
export function formFieldsExceed(text: Buffer, limit = INPUT_LIMITS.maxEntries): boolean {
  if (text.length === 0) return false;
  let fields = 1;
  for (let i = text.indexOf(AMPERSAND); i !== -1; i = text.indexOf(AMPERSAND, i + 1)) {
    if (++fields > limit) return true;
  }
  return false;
}

/** Counts the parameters of a parsed query string (repeated names count once per value). */
export function queryParametersExceed(query: unknown, limit = INPUT_LIMITS.maxEntries): boolean {
  if (query === null || typeof query !== 'object') return false;
  let count = 0;
  for (const key in query) {
    const value = (query as Record<string, unknown>)[key];
    count += Array.isArray(value) ? value.length : 1;
    if (count > limit) return true;
  }
  return false;
}
