/**
 * The part of `npm run lint:openapi` that redocly cannot express exactly: checks the
 * committed docs/openapi.json against scripts/openapi-rules.ts (a unique operationId on
 * every operation, every enum a named component schema, problem+json error responses).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { documentProblems, inlineEnums, operationsOf } from './openapi-rules';
import { repoRoot } from './repo-root';

const file = process.argv[2] ?? join(repoRoot(), 'docs', 'openapi.json');
const document = JSON.parse(readFileSync(file, 'utf8')) as object;
const problems = documentProblems(document);
if (problems.length > 0) {
  process.stderr.write(`${file}: ${problems.length} problem(s)\n${problems.map((p) => `  - ${p}\n`).join('')}`);
  process.exit(1);
}
const enums = Object.values((document as { components?: { schemas?: Record<string, { enum?: unknown }> } }).components?.schemas ?? {}).filter(
  (schema) => Array.isArray(schema.enum),
).length;
process.stdout.write(
  `${file}: ${operationsOf(document).length} operations with unique operationIds, ${enums} named enums, ${inlineEnums(document).length} inline; error responses are problem+json\n`,
);
