import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { ORIGINAL_VM, bearer, login } from '../support/api';
import { TEST_JWT_SECRET, runServerToExit, startServer } from '../support/server-process';

describe('start-up configuration', () => {
  const base = { DATABASE_URL: 'sqlite::memory:', SDK_STATE_PATH: ':memory:', PORT: '0' };

  it('refuses to start outside demo mode without JWT_SECRET or SDK_API_KEY, naming each', async () => {
    const neither = await runServerToExit(base);
    expect(neither.code).not.toBe(0);
    expect(neither.output).toMatch(/JWT_SECRET is required/);
    expect(neither.output).toMatch(/SDK_API_KEY is required/);
    expect(neither.output).not.toMatch(/\n\s+at /);

    const noKey = await runServerToExit({ ...base, JWT_SECRET: TEST_JWT_SECRET });
    expect(noKey.code).not.toBe(0);
    expect(noKey.output).toMatch(/SDK_API_KEY is required/);
    expect(noKey.output).not.toMatch(/JWT_SECRET is required/);
  });

  it('refuses invalid values, naming the variable', async () => {
    const result = await runServerToExit({ ...base, JWT_SECRET: 'short', SDK_API_KEY: 'k', PORT: 'eighty', SDK_FAILURE_RATE: '2' });
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(/JWT_SECRET must be at least 32 characters/);
    expect(result.output).toMatch(/PORT must be a number/);
    expect(result.output).toMatch(/SDK_FAILURE_RATE must be a number between 0 and 1/);
  });

  it('does not create demo users unless demo mode is asked for', async () => {
    const server = await startServer({ env: { VMPLANE_DEMO: undefined } });
    try {
      const response = await request(server.url).post('/token').type('form').send({ username: 'testuser', password: 'testpassword' });
      expect(response.status).toBe(401);
    } finally {
      await server.stop();
    }
  });

  it('creates the admin named by ADMIN_USERNAME / ADMIN_PASSWORD outside demo mode', async () => {
    const server = await startServer({ env: { VMPLANE_DEMO: undefined, ADMIN_USERNAME: 'root', ADMIN_PASSWORD: 'a-long-admin-password' } });
    try {
      const token = await login(server.url, 'root', 'a-long-admin-password');
      expect((await request(server.url).get('/users/me').set(bearer(token))).body.role).toBe('admin');
    } finally {
      await server.stop();
    }
  });
});

describe('reconciliation against the hypervisor (real server, state file edited between restarts)', () => {
  it('deletes an orphan, fails a VM missing from the hypervisor, and reports both', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'vmplane-recon-'));
    let server = await startServer({ dataDir });
    let token = await login(server.url);
    const kept = (await request(server.url).post('/vms').set(bearer(token)).send({ ...ORIGINAL_VM, name: 'kept', public_ip: null })).body;
    const ghost = (await request(server.url).post('/vms').set(bearer(token)).send({ ...ORIGINAL_VM, name: 'ghost', public_ip: '10.9.9.9' })).body;
    await server.stop();

    // While the platform is down: a VM appears on the hypervisor that it never recorded, and one of its VMs vanishes.
    const hv = new Database(server.hypervisorStatePath);
    const orphanId = randomUUID();
    hv.prepare(
      `INSERT INTO vms (id, name, cpu_cores, memory, disk_size, public_ip, host, gpus, labels, created_at) VALUES (?, 'stray', 1, 256, 1, NULL, 'cpu-01', '[]', ?, ?)`,
    ).run(orphanId, JSON.stringify([`vmplane.vm-id=${randomUUID()}`]), new Date().toISOString());
    hv.prepare(`DELETE FROM vms WHERE labels LIKE ?`).run(`%${ghost.id}%`);
    hv.close();

    server = await startServer({ dataDir });
    try {
      token = await login(server.url);
      const admin = await login(server.url, 'admin', 'adminpassword');
      expect((await request(server.url).get('/admin/reconciliation').set(bearer(token))).status).toBe(403);
      const report = await request(server.url).post('/admin/reconciliation').set(bearer(admin));
      expect(report.status).toBe(200);
      // The start-up pass already repaired everything; this pass confirms nothing is left.
      const first = await request(server.url).get('/admin/reconciliation').set(bearer(admin));
      expect(first.body).toMatchObject({ orphans_found: 0, missing_vms_failed: 0 });

      const ops = await request(server.url).get('/operations?limit=200').set(bearer(admin));
      const cleanup = ops.body.items.find((o: { action: string; hypervisor_vm_id: string }) => o.action === 'cleanup_orphan' && o.hypervisor_vm_id === orphanId);
      expect(cleanup).toMatchObject({ status: 'succeeded', user_id: null });
      const reconcile = ops.body.items.find((o: { action: string; vm_id: string }) => o.action === 'reconcile' && o.vm_id === ghost.id);
      expect(reconcile).toMatchObject({ status: 'succeeded' });

      const check = new Database(server.hypervisorStatePath, { readonly: true });
      expect(check.prepare('SELECT count(*) AS n FROM vms WHERE id = ?').get(orphanId)).toEqual({ n: 0 });
      check.close();
      const ghostNow = await request(server.url).get(`/vms/${ghost.id}`).set(bearer(token));
      expect(ghostNow.body).toMatchObject({ status: 'failed', status_reason: expect.stringContaining('missing from the hypervisor') });
      expect((await request(server.url).get(`/vms/${kept.id}`).set(bearer(token))).body.status).toBe('created');
      // The ghost's public IP was released with it.
      expect((await request(server.url).post('/vms').set(bearer(token)).send({ ...ORIGINAL_VM, public_ip: '10.9.9.9' })).status).toBe(201);
    } finally {
      await server.stop();
    }
  });

  it('reports what the start-up pass found', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'vmplane-recon2-'));
    let server = await startServer({ dataDir });
    await server.stop();
    const hv = new Database(server.hypervisorStatePath);
    hv.prepare(
      `INSERT INTO vms (id, name, cpu_cores, memory, disk_size, public_ip, host, gpus, labels, created_at) VALUES (?, 'stray', 1, 256, 1, NULL, NULL, '[]', '[]', ?)`,
    ).run(randomUUID(), new Date().toISOString());
    hv.close();
    server = await startServer({ dataDir });
    try {
      const admin = await login(server.url, 'admin', 'adminpassword');
      const report = await (async () => {
        for (let i = 0; i < 100; i++) {
          const r = await request(server.url).get('/admin/reconciliation').set(bearer(admin));
          if (r.status === 200 && r.body.orphans_found > 0) return r.body;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        throw new Error('no report');
      })();
      expect(report).toMatchObject({ hypervisor_vms: 1, orphans_found: 1, orphans_removed: 1, error: null });
      expect(report.drift).toEqual([expect.objectContaining({ kind: 'orphan', resolved: true })]);
      expect(Date.parse(report.finished_at)).toBeGreaterThanOrEqual(Date.parse(report.started_at));
    } finally {
      await server.stop();
    }
  });
});
