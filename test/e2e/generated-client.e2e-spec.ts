/**
 * The real server driven through the generated client (libs/client): the original flow
 * (token, create, list, delete) plus the asynchronous and error paths the CLI uses.
 *
 * Two things make this a check that docs/openapi.json matches the server:
 * - every answer is validated against the document's own schema for that operation and
 *   status, strictly (undocumented properties are errors too);
 * - this file and the client are type-checked against the generated types (ts-jest only
 *   transpiles here, because tsconfig.json sets isolatedModules), so code that relies on
 *   a field the spec lacks, or with another type, fails the first test.
 */
import Ajv, { type ValidateFunction } from 'ajv';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import {
  VmplaneApiError,
  createVmplaneClient,
  login,
  operationIdFromLocation,
  unwrap,
  waitForOperation,
  type CreateVmDto,
  type OperationResponseDto,
  type VmPageDto,
  type VmResponseDto,
  type VmStatus,
  type VmplaneClient,
} from '../../libs/client/src';
import { ORIGINAL_VM } from '../support/api';
import { ROOT, ServerHandle, startServer } from '../support/server-process';

jest.setTimeout(60_000);

type OpenApi = {
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>>;
  components: { schemas: Record<string, object> };
};
const SPEC = JSON.parse(readFileSync(join(ROOT, 'docs', 'openapi.json'), 'utf8')) as OpenApi;

/**
 * The document's schemas, made strict for validation:
 * - every object schema with properties gets additionalProperties: false, so a field the
 *   server sends but the spec does not document fails;
 * - `nullable: true` admits null whatever else the schema says, as the generated types
 *   (`X | null`) and the generators read it; @nestjs/swagger emits nullable next to allOf.
 */
function strict(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strict);
  if (typeof node !== 'object' || node === null) return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) out[key] = key === 'example' ? value : strict(value);
  if ('properties' in out && !('additionalProperties' in out)) out.additionalProperties = false;
  if (out.nullable === true) {
    delete out.nullable;
    return { anyOf: [{ type: 'null' }, out] };
  }
  return out;
}

/** Problem details are validated strictly too: every extension member the server sends must be declared. */
const components = strict(SPEC.components) as { schemas: Record<string, { properties: Record<string, unknown> }> };

const ajv = new Ajv({ strict: false, allErrors: true });
ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
ajv.addFormat('date-time', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
ajv.addFormat('password', true);
ajv.addSchema({ $id: 'spec', components });
const validators = new Map<string, ValidateFunction>();

/** Asserts that a response is one the spec documents for this operation, with a body that fits its schema. */
async function expectDocumented(method: string, path: string, response: Response, body: unknown): Promise<void> {
  const operation = SPEC.paths[path]?.[method.toLowerCase()];
  if (!operation) throw new Error(`${method} ${path} is not in docs/openapi.json`);
  const documented = operation.responses[String(response.status)];
  if (!documented) throw new Error(`${method} ${path} answered ${response.status}, which docs/openapi.json does not document`);
  const mediaType = (response.headers.get('content-type') ?? '').split(';')[0].trim();
  const content = documented.content?.[mediaType];
  if (!content) throw new Error(`${method} ${path} ${response.status} answered ${mediaType}, documented: ${Object.keys(documented.content ?? {})}`);
  const key = `${method} ${path} ${response.status} ${mediaType}`;
  let validate = validators.get(key);
  if (!validate) {
    const schema = JSON.parse(JSON.stringify(content.schema).replace(/"#\/components/g, '"spec#/components'));
    validate = ajv.compile(schema);
    validators.set(key, validate);
  }
  if (!validate(body)) {
    throw new Error(`${key} does not match docs/openapi.json: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body, null, 2)}`);
  }
}

/** Wraps fetch so that every answer the client gets is checked against the spec. */
function checkingFetch(seen: string[]): (input: Request) => Promise<Response> {
  return async (input: Request) => {
    const response = await fetch(input);
    const url = new URL(input.url);
    const template = specPath(url.pathname);
    const text = await response.clone().text();
    await expectDocumented(input.method, template, response, text ? JSON.parse(text) : undefined);
    seen.push(`${input.method} ${template} ${response.status}`);
    return response;
  };
}

function specPath(pathname: string): string {
  for (const template of Object.keys(SPEC.paths)) {
    const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`);
    if (pattern.test(pathname)) return template;
  }
  throw new Error(`no path in docs/openapi.json matches ${pathname}`);
}

// Compile-time checks: these lines fail to type-check when the generated types drift.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const statusesMatch: Equal<VmStatus, 'provisioning' | 'created' | 'shelved' | 'deleting' | 'deleted' | 'failed'> = true;
const pageItems: Equal<VmPageDto['items'][number], VmResponseDto> = true;
const originalBody: CreateVmDto = ORIGINAL_VM;

describe('the generated client (libs/client) against the real server', () => {
  let server: ServerHandle;
  let client: VmplaneClient;
  const seen: string[] = [];

  beforeAll(async () => {
    server = await startServer({ env: { SDK_LATENCY_MS: '150' } });
  });
  afterAll(() => server?.stop());

  it('type-checks: this file, libs/client and libs/cli compile against the generated schema', () => {
    expect([statusesMatch, pageItems, Boolean(originalBody)]).toEqual([true, true, true]);
    const config = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined });
    const roots = [__filename, join(ROOT, 'libs', 'client', 'src', 'index.ts'), join(ROOT, 'libs', 'cli', 'src', 'main.ts')];
    const program = ts.createProgram(roots, {
      ...config!.options,
      noEmit: true,
      incremental: false,
    });
    const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => {
      const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : null;
      const location = d.file && where ? `${d.file.fileName.replace(`${ROOT}/`, '')}:${where.line + 1}: ` : '';
      return location + ts.flattenDiagnosticMessageText(d.messageText, ' ');
    });
    expect(diagnostics).toEqual([]);
  }, 60_000);

  it('token → create → list → delete, the original flow', async () => {
    const anonymous = createVmplaneClient({ baseUrl: `${server.url}/`, fetch: checkingFetch(seen) });
    const token = await login(anonymous, 'testuser', 'testpassword');
    expect(token).toEqual({ access_token: expect.any(String), token_type: 'bearer', expires_in: 3600 });
    client = createVmplaneClient({ baseUrl: server.url, token: token.access_token, fetch: checkingFetch(seen) });

    const created = await client.POST('/vms', { body: ORIGINAL_VM });
    expect(created.response.status).toBe(201);
    const vm: VmResponseDto = unwrap(created);
    expect(created.response.headers.get('location')).toBe(`/vms/${vm.id}`);
    expect(vm).toMatchObject({ ...ORIGINAL_VM, status: 'created', gpu_count: 0, gpus: [], deleted_at: null });

    const listed = unwrap(await client.GET('/vms', { params: { query: { label: 'test', limit: 10 } } }));
    expect(listed.items.map((item) => item.id)).toContain(vm.id);
    expect(listed.next_cursor).toBeNull();

    const fetched = unwrap(await client.GET('/vms/{id}', { params: { path: { id: vm.id } } }));
    expect(fetched).toEqual(vm);

    const deleted = await client.DELETE('/vms/{id}', { params: { path: { id: vm.id } } });
    expect(deleted.response.status).toBe(200);
    expect(unwrap(deleted)).toMatchObject({ id: vm.id, status: 'deleted', deleted_at: expect.any(String) });

    const ops = unwrap(await client.GET('/vms/{id}/operations', { params: { path: { id: vm.id } } }));
    expect(ops.items.map((op) => [op.action, op.status])).toEqual([
      ['delete', 'succeeded'],
      ['create', 'succeeded'],
    ]);
    expect(seen).toEqual(
      expect.arrayContaining(['POST /token 200', 'POST /vms 201', 'GET /vms 200', 'GET /vms/{id} 200', 'DELETE /vms/{id} 200', 'GET /vms/{id}/operations 200']),
    );
  });

  it('a GPU VM, asynchronously: 202 with Location, the operation to the end, capacity down and back up', async () => {
    const h100Free = async () =>
      unwrap(await client.GET('/capacity'))
        .items.filter((row) => row.gpu_model === 'h100-80gb')
        .reduce((sum, row) => sum + row.free, 0);
    const before = await h100Free();

    const accepted = await client.POST('/vms', {
      body: { name: 'gpu-client', cpu_cores: 4, memory: 8192, disk_size: 100, gpu_count: 1, gpu_model: 'h100-80gb', labels: ['client'] },
      headers: { Prefer: 'respond-async' },
    });
    expect(accepted.response.status).toBe(202);
    const operationId = operationIdFromLocation(accepted.response.headers.get('location'));
    expect(operationId).toEqual(expect.any(String));
    const polled: OperationResponseDto[] = [];
    const operation = await waitForOperation(client, operationId!, { intervalMs: 50, timeoutMs: 20_000, onPoll: (op) => polled.push(op) });
    expect(operation).toMatchObject({ action: 'create', status: 'succeeded', vm_id: unwrap(accepted).id, error: null });
    expect(polled.length).toBeGreaterThanOrEqual(1);

    const vm = unwrap(await client.GET('/vms/{id}', { params: { path: { id: operation.vm_id! } } }));
    expect(vm).toMatchObject({ status: 'created', gpu_count: 1, gpu_model: 'h100-80gb' });
    expect(vm.gpus).toHaveLength(1);
    expect(await h100Free()).toBe(before - 1);

    const deleting = await client.DELETE('/vms/{id}', { params: { path: { id: vm.id } }, headers: { Prefer: 'respond-async' } });
    expect(deleting.response.status).toBe(202);
    const deletion = await waitForOperation(client, operationIdFromLocation(deleting.response.headers.get('location'))!, { intervalMs: 50 });
    expect(deletion).toMatchObject({ action: 'delete', status: 'succeeded' });
    expect(await h100Free()).toBe(before);
  });

  it('errors arrive as documented problem details, thrown by unwrap as VmplaneApiError', async () => {
    const missing = await client.GET('/vms/{id}', { params: { path: { id: '00000000-0000-7000-8000-000000000000' } } });
    expect(missing.response.status).toBe(404);
    expect(missing.error).toMatchObject({ status: 404, code: 'not_found' });
    expect(() => unwrap(missing)).toThrow(VmplaneApiError);

    const invalid = await client.POST('/vms', { body: { ...ORIGINAL_VM, name: 'Not A Label', cpu_cores: 999 } });
    expect(invalid.response.status).toBe(400);
    expect(invalid.error?.code).toBe('validation_failed');
    expect(invalid.error?.errors?.map((e) => e.field).sort()).toEqual(['cpu_cores', 'name']);

    const never = await client.POST('/vms', { body: { name: 'too-big', cpu_cores: 2, memory: 4096, disk_size: 50, gpu_count: 8, gpu_model: 'l4-24gb' } });
    expect(never.response.status).toBe(422);
    expect(never.error).toMatchObject({ code: 'unsatisfiable', field: 'gpu_count', available: { max_gpu_count: 2 } });

    // Two L4s are all the us-east-1 L4 host has: while they are held, two more fit only elsewhere.
    const held = unwrap(await client.POST('/vms', { body: { name: 'l4-pair', cpu_cores: 2, memory: 4096, disk_size: 50, gpu_count: 2, gpu_model: 'l4-24gb', region: 'us-east-1' } }));
    const notNow = await client.POST('/vms', { body: { name: 'l4-pair-2', cpu_cores: 2, memory: 4096, disk_size: 50, gpu_count: 2, gpu_model: 'l4-24gb', region: 'us-east-1' } });
    expect(notNow.response.status).toBe(503);
    expect(notNow.error?.code).toBe('insufficient_capacity');
    expect(notNow.error?.alternatives?.length).toBeGreaterThan(0);
    unwrap(await client.DELETE('/vms/{id}', { params: { path: { id: held.id } } }));

    const anonymous = createVmplaneClient({ baseUrl: server.url, fetch: checkingFetch(seen) });
    const unauthenticated = await anonymous.GET('/vms');
    expect(unauthenticated.response.status).toBe(401);
    await expect(login(anonymous, 'testuser', 'wrong-password')).rejects.toMatchObject({ status: 401, code: expect.any(String) });
  });
});
