/**
 * The committed docs/openapi.json is what the running server serves, and it keeps the
 * project's rules: an operationId on every operation, every enum a named component,
 * problem+json error responses, bearer security on everything but the public routes.
 * (Staleness against the source is `npm run openapi:check`; lint is `npm run lint:openapi`.)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { documentProblems, inlineEnums, operationsOf } from '../../scripts/openapi-rules';
import { ROOT, ServerHandle, startServer } from '../support/server-process';

jest.setTimeout(60_000);

type Doc = {
  openapi: string;
  servers: { url: string }[];
  paths: Record<string, Record<string, { operationId?: string; security?: Record<string, string[]>[]; responses: Record<string, unknown> }>>;
  components: { schemas: Record<string, { enum?: unknown[]; type?: string }>; securitySchemes: Record<string, { type: string; scheme?: string }> };
};

/** The paths, schemas and other top-level members that differ between two documents. */
function differences(a: object, b: object): string[] {
  const out: string[] = [];
  const sections = (doc: object) => doc as Record<string, unknown>;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const key of keys) {
    const left = sections(a)[key];
    const right = sections(b)[key];
    if (isDeepStrictEqual(left, right)) continue;
    if ((key === 'paths' || key === 'components') && left && right) {
      const inner = key === 'paths' ? [left, right] : [(left as { schemas: object }).schemas, (right as { schemas: object }).schemas];
      for (const name of new Set([...Object.keys(inner[0] as object), ...Object.keys(inner[1] as object)])) {
        if (!isDeepStrictEqual((inner[0] as Record<string, unknown>)[name], (inner[1] as Record<string, unknown>)[name])) out.push(`${key} ${name}`);
      }
      if (out.length === 0) out.push(key);
    } else {
      out.push(key);
    }
  }
  return out;
}

const COMMITTED = JSON.parse(readFileSync(join(ROOT, 'docs', 'openapi.json'), 'utf8')) as Doc;
const PUBLIC_OPERATIONS = ['issueToken', 'getHealth', 'getReadiness', 'getMetrics'];

describe('the OpenAPI document', () => {
  let server: ServerHandle;
  let served: Doc;

  beforeAll(async () => {
    server = await startServer();
    const response = await fetch(`${server.url}/openapi.json`);
    expect(response.status).toBe(200);
    served = JSON.parse(await response.text()) as Doc; // parsed in this realm, for isDeepStrictEqual
  });
  afterAll(() => server?.stop());

  it('the server serves the committed docs/openapi.json (only the server URL differs)', () => {
    const { servers: servedServers, ...servedRest } = served;
    const { servers: committedServers, ...committedRest } = COMMITTED;
    expect(servedServers).toEqual([{ url: server.url }]);
    // The committed document names the default address, not whatever port a test used.
    expect(committedServers).toEqual([{ url: 'http://127.0.0.1:8000' }]);
    const stale = differences(servedRest, committedRest);
    if (stale.length > 0) {
      throw new Error(`docs/openapi.json is not what the server serves; run npm run openapi:sync. Differences: ${stale.join(', ')}`);
    }
    expect(servedRest).toEqual(committedRest);
  });

  it('is OpenAPI 3 with a bearer security scheme, and Swagger UI is served at /docs', async () => {
    expect(COMMITTED.openapi).toMatch(/^3\./);
    expect(COMMITTED.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    const docs = await fetch(`${server.url}/docs`);
    expect(docs.status).toBe(200);
    expect(docs.headers.get('content-type')).toMatch(/text\/html/);
  });

  it('generates a client with openapi-typescript run from the repository root, as a user would', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'vmplane-ots-')), 'schema.d.ts');
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'openapi-typescript', 'bin', 'cli.js'), 'docs/openapi.json', '-o', out], { cwd: ROOT, stdio: 'pipe' });
    const generated = readFileSync(out, 'utf8');
    expect(generated).toContain('createVm');
    // The operation error is nullable in the types as in the responses.
    expect(generated).toMatch(/error: \{[^}]*code: string;[^}]*\} \| null;/s);
  });

  it('has a unique operationId on every operation', () => {
    const operations = operationsOf(COMMITTED);
    expect(operations.length).toBeGreaterThanOrEqual(20);
    const missing = operations.filter(({ operation }) => typeof operation.operationId !== 'string').map(({ method, path }) => `${method} ${path}`);
    expect(missing).toEqual([]);
    const ids = operations.map(({ operation }) => operation.operationId as string);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(expect.arrayContaining(['issueToken', 'createVm', 'listVms', 'getVm', 'deleteVm', 'listVmOperations', 'getOperation', 'getCapacity']));
  });

  it('names every enum: each is a component schema, referenced, never inline', () => {
    expect(inlineEnums(COMMITTED)).toEqual([]);
    const named = Object.entries(COMMITTED.components.schemas)
      .filter(([, schema]) => Array.isArray(schema.enum))
      .map(([name]) => name);
    expect(named).toEqual(expect.arrayContaining(['VmStatus', 'OperationStatus', 'OperationAction', 'TokenType']));
    const text = JSON.stringify(COMMITTED.paths) + JSON.stringify(COMMITTED.components.schemas);
    for (const name of named) expect(text).toContain(`"#/components/schemas/${name}"`);
  });

  it('documents errors as problem details and security on every operation but the public ones', () => {
    expect(documentProblems(COMMITTED)).toEqual([]);
    for (const { path, method, operation } of operationsOf(COMMITTED)) {
      const id = operation.operationId as string;
      const security = operation.security as Record<string, string[]>[] | undefined;
      if (PUBLIC_OPERATIONS.includes(id)) {
        expect({ id, security: security ?? [] }).toEqual({ id, security: [] });
      } else {
        expect({ id, method, path, security }).toEqual({ id, method, path, security: [{ bearer: [] }, { oauth2: [] }] });
        expect(Object.keys(operation.responses as object)).toContain('401');
      }
    }
  });

  it('documents the original API: form login, VM create/list/delete, the VM fields and statuses', () => {
    const token = COMMITTED.paths['/token'].post as unknown as { requestBody: { content: Record<string, unknown> } };
    expect(Object.keys(token.requestBody.content)).toContain('application/x-www-form-urlencoded');
    expect(Object.keys(COMMITTED.paths['/vms'])).toEqual(expect.arrayContaining(['get', 'post']));
    expect(Object.keys(COMMITTED.paths['/vms/{id}'])).toEqual(expect.arrayContaining(['get', 'delete']));
    expect(Object.keys(COMMITTED.paths['/vms'].post.responses)).toEqual(expect.arrayContaining(['201', '202', '400', '401', '503']));
    // The original statuses, and shelved (the VM lifecycle's).
    expect(COMMITTED.components.schemas.VmStatus.enum).toEqual(['provisioning', 'created', 'shelved', 'deleting', 'deleted', 'failed']);
  });
});
