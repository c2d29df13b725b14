/**
 * The floor vmplane's framework, ORM and logic sit on: Fastify, jsonwebtoken
 * and better-sqlite3 (WAL) — or pg — doing only the raw work of each
 * endpoint, with no framework logic. Started by bench/api.ts beside vmplane.
 *
 *   POST   /vms       verify the JWT, insert one row and update it in one transaction
 *   DELETE /vms/:id   verify the JWT, update one row in a transaction
 *   GET    /vms/:id   verify the JWT, read one row by primary key
 *   GET    /vms       verify the JWT, read one page of the caller's rows by index
 */
import Database from 'better-sqlite3';
import Fastify from 'fastify';
import jwt from 'jsonwebtoken';
import { createSecretKey, randomUUID } from 'node:crypto';
import { Pool } from 'pg';

const port = Number(process.env.PORT ?? 8001);
// A KeyObject, as vmplane uses: given a string, jsonwebtoken re-parses it as a PEM key on every verify.
const secret = createSecretKey(Buffer.from(process.env.JWT_SECRET ?? 'baseline-secret-baseline-secret-000'));
const databaseUrl = process.env.DATABASE_URL ?? 'sqlite::memory:';
const verifyOptions: jwt.VerifyOptions = { algorithms: ['HS256'], issuer: 'vmplane', audience: 'vmplane-api' };

interface Store {
  create(id: string, owner: string, body: Record<string, unknown>, now: string): Promise<unknown>;
  remove(id: string, now: string): Promise<unknown>;
  get(id: string): Promise<unknown>;
  list(owner: string, limit: number): Promise<unknown[]>;
}

const SCHEMA = `CREATE TABLE IF NOT EXISTS vms (id TEXT PRIMARY KEY, owner_id TEXT NOT NULL, name TEXT NOT NULL, cpu_cores INTEGER, memory INTEGER,
  disk_size INTEGER, public_ip TEXT, labels TEXT, status TEXT, created_at TEXT, updated_at TEXT, deleted_at TEXT)`;

function sqliteStore(path: string): Store {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(SCHEMA);
  db.exec('CREATE INDEX IF NOT EXISTS ix_owner_id ON vms (owner_id, id)');
  const insert = db.prepare(`INSERT INTO vms VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'provisioning', ?, ?, NULL)`);
  const markCreated = db.prepare(`UPDATE vms SET status = 'created', updated_at = ? WHERE id = ?`);
  const markDeleted = db.prepare(`UPDATE vms SET status = 'deleted', updated_at = ?, deleted_at = ? WHERE id = ?`);
  const get = db.prepare('SELECT * FROM vms WHERE id = ?');
  const list = db.prepare(`SELECT * FROM vms WHERE owner_id = ? AND status <> 'deleted' ORDER BY id DESC LIMIT ?`);
  const create = db.transaction((id: string, owner: string, b: Record<string, unknown>, now: string) => {
    insert.run(id, owner, b.name, b.cpu_cores, b.memory, b.disk_size, b.public_ip ?? null, JSON.stringify(b.labels ?? []), now, now);
    markCreated.run(now, id);
    return get.get(id);
  });
  const remove = db.transaction((id: string, now: string) => {
    markDeleted.run(now, now, id);
    return get.get(id);
  });
  return {
    create: async (id, owner, b, now) => create(id, owner, b, now),
    remove: async (id, now) => remove(id, now),
    get: async (id) => get.get(id),
    list: async (owner, limit) => list.all(owner, limit),
  };
}

function postgresStore(url: string): Store {
  const pool = new Pool({ connectionString: url, max: 20 });
  void pool.query(SCHEMA).then(() => pool.query('CREATE INDEX IF NOT EXISTS ix_owner_id ON vms (owner_id, id)'));
  const inTransaction = async <T>(work: (q: (sql: string, params: unknown[]) => Promise<{ rows: T[] }>) => Promise<T>) => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work((sql, params) => client.query(sql, params) as unknown as Promise<{ rows: T[] }>);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    } finally {
      client.release();
    }
  };
  return {
    create: (id, owner, b, now) =>
      inTransaction(async (q) => {
        await q(`INSERT INTO vms VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'provisioning', $9, $9, NULL)`, [
          id, owner, b.name, b.cpu_cores, b.memory, b.disk_size, b.public_ip ?? null, JSON.stringify(b.labels ?? []), now,
        ]);
        return (await q(`UPDATE vms SET status = 'created', updated_at = $2 WHERE id = $1 RETURNING *`, [id, now])).rows[0];
      }),
    remove: (id, now) =>
      inTransaction(async (q) => (await q(`UPDATE vms SET status = 'deleted', updated_at = $2, deleted_at = $2 WHERE id = $1 RETURNING *`, [id, now])).rows[0]),
    get: async (id) => (await pool.query('SELECT * FROM vms WHERE id = $1', [id])).rows[0],
    list: async (owner, limit) => (await pool.query(`SELECT * FROM vms WHERE owner_id = $1 AND status <> 'deleted' ORDER BY id DESC LIMIT $2`, [owner, limit])).rows,
  };
}

const store = databaseUrl.startsWith('postgres') ? postgresStore(databaseUrl) : sqliteStore(databaseUrl.slice('sqlite:'.length));
const app = Fastify({ logger: false });

function caller(authorization: string | undefined): string | null {
  if (!authorization?.startsWith('Bearer ')) return null;
  try {
    return (jwt.verify(authorization.slice(7), secret, verifyOptions) as jwt.JwtPayload).sub ?? null;
  } catch {
    return null;
  }
}

app.post('/vms', async (request, reply) => {
  const owner = caller(request.headers.authorization);
  if (!owner) return reply.status(401).send({ detail: 'unauthenticated' });
  const now = new Date().toISOString();
  return reply.status(201).send(await store.create(randomUUID(), owner, request.body as Record<string, unknown>, now));
});
app.delete<{ Params: { id: string } }>('/vms/:id', async (request, reply) => {
  if (!caller(request.headers.authorization)) return reply.status(401).send({ detail: 'unauthenticated' });
  return store.remove(request.params.id, new Date().toISOString());
});
app.get<{ Params: { id: string } }>('/vms/:id', async (request, reply) => {
  if (!caller(request.headers.authorization)) return reply.status(401).send({ detail: 'unauthenticated' });
  const row = await store.get(request.params.id);
  return row ? row : reply.status(404).send({ detail: 'not found' });
});
app.get<{ Querystring: { limit?: string } }>('/vms', async (request, reply) => {
  const owner = caller(request.headers.authorization);
  if (!owner) return reply.status(401).send({ detail: 'unauthenticated' });
  return { items: await store.list(owner, Number(request.query.limit ?? 50)) };
});
app.get('/health', async () => ({ status: 'ok' }));

app.listen({ port, host: '127.0.0.1' }).then(() => process.stdout.write(`baseline listening on ${port}\n`));
