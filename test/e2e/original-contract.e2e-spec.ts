import request from 'supertest';
import { ORIGINAL_VM, bearer } from '../support/api';
import { createTestDatabase, postgresAvailable } from '../support/postgres';
import { ServerHandle, startServer } from '../support/server-process';

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const databases: [string, boolean][] = [
  ['SQLite', true],
  ['PostgreSQL', postgresAvailable()],
];

describe.each(databases)('the original README flow, verbatim, on %s', (_name, enabled) => {
  const run = enabled ? it : it.skip;
  let server: ServerHandle;
  let dropDatabase: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    if (!enabled) return;
    let databaseUrl: string | undefined;
    if (_name === 'PostgreSQL') {
      const db = await createTestDatabase();
      databaseUrl = db.url;
      dropDatabase = db.drop;
    }
    server = await startServer({ databaseUrl });
  });

  afterAll(async () => {
    await server?.stop();
    await dropDatabase?.();
  });

  run('token → create → delete, exactly as the original README sends them', async () => {
    const token = await request(server.url)
      .post('/token')
      .set('Content-Type', 'application/x-www-form-urlencoded')
      .send('username=testuser&password=testpassword');
    expect(token.status).toBe(200);
    expect(token.body).toEqual({ access_token: expect.any(String), token_type: 'bearer', expires_in: 3600 });
    const auth = bearer(token.body.access_token);

    const created = await request(server.url)
      .post('/vms')
      .set(auth)
      .set('Content-Type', 'application/json')
      .send(JSON.stringify(ORIGINAL_VM));
    expect(created.status).toBe(201);
    expect(created.headers.location).toBe(`/vms/${created.body.id}`);
    expect(created.body).toMatchObject({ ...ORIGINAL_VM, status: 'created' });
    expect(created.body.id).toMatch(UUID);
    expect(created.body.created_at).toMatch(ISO_UTC);
    expect(created.body.updated_at).toMatch(ISO_UTC);
    expect(created.body.deleted_at).toBeNull();

    const deleted = await request(server.url).delete(`/vms/${created.body.id}`).set(auth);
    expect(deleted.status).toBe(200);
    expect(deleted.body).toMatchObject({ ...ORIGINAL_VM, id: created.body.id, status: 'deleted', labels: ['test'] });
    expect(deleted.body.deleted_at).toMatch(ISO_UTC);
    expect(Date.parse(deleted.body.updated_at)).toBeGreaterThan(Date.parse(created.body.updated_at));
    expect(deleted.body.created_at).toBe(created.body.created_at);

    // The record and its operation log outlive the VM.
    const after = await request(server.url).get(`/vms/${created.body.id}`).set(auth);
    expect(after.status).toBe(200);
    expect(after.body.status).toBe('deleted');
    const ops = await request(server.url).get(`/vms/${created.body.id}/operations`).set(auth);
    expect(ops.body.items.map((o: { action: string; status: string }) => [o.action, o.status])).toEqual([
      ['delete', 'succeeded'],
      ['create', 'succeeded'],
    ]);
    for (const op of ops.body.items) {
      expect(op.user_id).toBe(created.body.owner_id);
      for (const field of ['created_at', 'updated_at', 'started_at', 'finished_at']) expect(op[field]).toMatch(ISO_UTC);
    }
  });
});
