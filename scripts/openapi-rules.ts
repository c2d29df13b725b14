/**
 * The project's own rules for the OpenAPI document, on top of `redocly lint`
 * (see redocly.lint.yaml), and the canonical key order docs/openapi.json is written in.
 * Used by scripts/sync-openapi.ts and by test/e2e/openapi.e2e-spec.ts.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
const ROOT_ORDER = ['openapi', 'info', 'servers', 'security', 'tags', 'paths', 'components'];

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The same document with a stable key order: the root in the conventional order, every
 * other object sorted by key, except `properties` maps, which keep the declaration order
 * of the DTOs (so generated types read like the source). Arrays keep their order.
 * Only the order changes: the result is deep-equal to the input.
 */
export function canonicalDocument<T extends object>(document: T): T {
  const root = document as unknown as JsonObject;
  const keys = Object.keys(root).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const out: JsonObject = {};
  for (const key of keys) out[key] = canonical(root[key], false);
  return out as unknown as T;
}

function rank(key: string): number {
  const index = ROOT_ORDER.indexOf(key);
  return index === -1 ? ROOT_ORDER.length : index;
}

function canonical(value: Json, keepOrder: boolean): Json {
  if (Array.isArray(value)) return value.map((item) => canonical(item, false));
  if (!isObject(value)) return value;
  const keys = keepOrder ? Object.keys(value) : Object.keys(value).sort();
  const out: JsonObject = {};
  for (const key of keys) out[key] = canonical(value[key], !keepOrder && key === 'properties' && isObject(value[key]));
  return out;
}

export interface OperationRef {
  path: string;
  method: string;
  operation: JsonObject;
}

export function operationsOf(document: object): OperationRef[] {
  const paths = (document as JsonObject).paths;
  const found: OperationRef[] = [];
  if (!isObject(paths)) return found;
  for (const [path, item] of Object.entries(paths)) {
    if (!isObject(item)) continue;
    for (const method of HTTP_METHODS) {
      const operation = item[method];
      if (isObject(operation)) found.push({ path, method, operation });
    }
  }
  return found;
}

/** JSON pointers of every `enum` that is not a named schema of its own (#/components/schemas/Name). */
export function inlineEnums(document: object): string[] {
  const found: string[] = [];
  const walk = (node: Json, pointer: string[]): void => {
    if (Array.isArray(node)) {
      node.forEach((item, index) => walk(item, [...pointer, String(index)]));
      return;
    }
    if (!isObject(node)) return;
    const named = pointer.length === 3 && pointer[0] === 'components' && pointer[1] === 'schemas';
    if (Array.isArray(node.enum) && !named) found.push(`#/${pointer.map(escapePointer).join('/')}`);
    for (const [key, child] of Object.entries(node)) {
      // Example values are data, not schemas.
      if (key === 'example' || key === 'examples') continue;
      walk(child, [...pointer, key]);
    }
  };
  walk(document as JsonObject, []);
  return found;
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * Rules redocly does not express (or not the way this project means them):
 * - every operation has a unique operationId;
 * - every enum is a named component schema (enumName in @ApiProperty), so generated
 *   clients get one named type per enum instead of anonymous copies;
 * - every documented error response (4xx, 5xx) is application/problem+json with ProblemDetailsDto;
 * - a nullable schema has its own `type` and no $ref/allOf beside it: OpenAPI 3.0 ignores
 *   `nullable` there, so validators and generators would refuse the null the API sends.
 */
export function documentProblems(document: object): string[] {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const { path, method, operation } of operationsOf(document)) {
    const where = `${method.toUpperCase()} ${path}`;
    const id = operation.operationId;
    if (typeof id !== 'string' || id === '') problems.push(`${where} has no operationId`);
    else if (seen.has(id)) problems.push(`${where} reuses operationId ${id} (also on ${seen.get(id)})`);
    else seen.set(id, where);

    const responses = isObject(operation.responses) ? operation.responses : {};
    for (const [status, response] of Object.entries(responses)) {
      if (!/^[45]/.test(status) || !isObject(response)) continue;
      const content = isObject(response.content) ? response.content : {};
      const problem = content['application/problem+json'];
      const ref = isObject(problem) && isObject(problem.schema) ? problem.schema.$ref : undefined;
      if (ref !== '#/components/schemas/ProblemDetailsDto') {
        problems.push(`${where} response ${status} is not application/problem+json with ProblemDetailsDto`);
      }
    }
  }
  for (const pointer of inlineEnums(document)) problems.push(`inline enum at ${pointer}: give it an enumName`);
  for (const pointer of ambiguousNullables(document as Json)) problems.push(`nullable without its own type at ${pointer}: define the schema inline`);
  return problems;
}

function ambiguousNullables(value: Json, pointer = '#'): string[] {
  if (Array.isArray(value)) return value.flatMap((item, i) => ambiguousNullables(item, `${pointer}/${i}`));
  if (!isObject(value)) return [];
  const here = value.nullable === true && (typeof value.type !== 'string' || '$ref' in value || 'allOf' in value) ? [pointer] : [];
  return [...here, ...Object.entries(value).flatMap(([key, child]) => ambiguousNullables(child, `${pointer}/${escapePointer(key)}`))];
}
