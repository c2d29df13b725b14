import { Client } from '@vmplane/sdk';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { ORIGINAL_VM, bearer, login } from '../support/api';
import { ServerHandle, TEST_JWT_SECRET, runServerToExit, startServer } from '../support/server-process';

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

/** The simulated hypervisor as any client of it sees it: its SDK, on the server's state file. */
async function hypervisorOf(server: ServerHandle): Promise<Client> {
  const client = new Client('test-sdk-key', { statePath: server.hypervisorStatePath, failureRate: 0 });
  client.authenticate();
  return client;
}

async function installationOf(server: ServerHandle): Promise<string> {
  const [row] = await server.query<{ id: string }>('SELECT id FROM installation');
  return row.id;
}

describe('reconciliation against the hypervisor (real server; the hypervisor changed through its SDK between restarts)', () => {
  it('deletes its own orphan, fails a VM missing from the hypervisor, and reports both', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'vmplane-recon-'));
    let server = await startServer({ dataDir });
    let token = await login(server.url);
    const kept = (await request(server.url).post('/vms').set(bearer(token)).send({ ...ORIGINAL_VM, name: 'kept', public_ip: null })).body;
    const ghost = (await request(server.url).post('/vms').set(bearer(token)).send({ ...ORIGINAL_VM, name: 'ghost', public_ip: '10.9.9.9' })).body;
    const installationId = await installationOf(server);
    await server.stop();

    // While the platform is down: a VM of this installation appears that it never recorded, and one of its VMs vanishes.
    const hypervisor = await hypervisorOf(server);
    const strayVmId = randomUUID();
    const orphan = await hypervisor.createVm({
      name: 'stray',
      cpuCores: 1,
      memory: 256,
      diskSize: 1,
      labels: [`vmplane.vm-id=${strayVmId}`],
      metadata: { installationId, vmId: strayVmId, ownerId: 'nobody' },
    });
    const [ghostOnHypervisor] = (await hypervisor.listVms()).filter((vm) => vm.metadata?.vmId === ghost.id);
    await hypervisor.deleteVm(ghostOnHypervisor.id);
    hypervisor.close();

    server = await startServer({ dataDir });
    try {
      token = await login(server.url);
      const admin = await login(server.url, 'admin', 'adminpassword');
      expect((await request(server.url).get('/admin/reconciliation').set(bearer(token))).status).toBe(403);
      const report = await request(server.url).post('/admin/reconciliation').set(bearer(admin));
      expect(report.status).toBe(200);
      // The start-up pass already repaired everything; this pass confirms nothing is left.
      expect(report.body).toMatchObject({ orphans_found: 0, missing_vms_failed: 0, foreign_vms: 0 });

      const ops = await request(server.url).get('/operations?limit=200').set(bearer(admin));
      const cleanup = ops.body.items.find((o: { action: string; hypervisor_vm_id: string }) => o.action === 'cleanup_orphan' && o.hypervisor_vm_id === orphan.id);
      expect(cleanup).toMatchObject({ status: 'succeeded', user_id: null });
      const reconcile = ops.body.items.find((o: { action: string; vm_id: string }) => o.action === 'reconcile' && o.vm_id === ghost.id);
      expect(reconcile).toMatchObject({ status: 'succeeded' });

      const check = await hypervisorOf(server);
      expect(await check.getVm(orphan.id)).toBeNull();
      check.close();
      const ghostNow = await request(server.url).get(`/vms/${ghost.id}`).set(bearer(token));
      // Gone from the hypervisor: no power state any more, and its metering ends where it was found gone.
      expect(ghostNow.body).toMatchObject({ status: 'failed', power_state: 'unknown', status_reason: expect.stringContaining('missing from the hypervisor') });
      const events = await server.query<{ kind: string }>('SELECT kind FROM usage_events WHERE vm_id = $1 ORDER BY at, id', [ghost.id]);
      expect(events.map((e) => e.kind)).toEqual(['power_on', 'power_off']);
      // Deleting it is only a record change now.
      expect((await request(server.url).delete(`/vms/${ghost.id}`).set(bearer(token))).body).toMatchObject({ status: 'deleted', power_state: 'unknown' });
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
    const installationId = await installationOf(server);
    await server.stop();
    const hypervisor = await hypervisorOf(server);
    const strayVmId = randomUUID();
    await hypervisor.createVm({ name: 'stray', cpuCores: 1, memory: 256, diskSize: 1, metadata: { installationId, vmId: strayVmId, ownerId: 'nobody' } });
    hypervisor.close();
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

  it('two installations sharing one hypervisor: each reconciles only its own VMs, and neither loses one', async () => {
    const dirA = mkdtempSync(join(tmpdir(), 'vmplane-inst-a-'));
    const a = await startServer({ dataDir: dirA });
    // B has its own database but the same hypervisor state, as staging and production seeing one host would.
    const b = await startServer({ env: { SDK_STATE_PATH: a.hypervisorStatePath } });
    try {
      const [tokenA, tokenB] = [await login(a.url), await login(b.url)];
      const vmA = (await request(a.url).post('/vms').set(bearer(tokenA)).send({ ...ORIGINAL_VM, name: 'on-a', public_ip: null })).body;
      const vmB = (await request(b.url).post('/vms').set(bearer(tokenB)).send({ ...ORIGINAL_VM, name: 'on-b', public_ip: null })).body;
      expect([vmA.status, vmB.status]).toEqual(['created', 'created']);
      expect(await installationOf(a)).not.toBe(await installationOf(b));

      for (const [server, ownVm, otherVm] of [
        [a, vmA, vmB],
        [b, vmB, vmA],
      ] as const) {
        const admin = await login(server.url, 'admin', 'adminpassword');
        const report = (await request(server.url).post('/admin/reconciliation').set(bearer(admin))).body;
        expect(report).toMatchObject({ orphans_found: 0, orphans_removed: 0, missing_vms_failed: 0, foreign_vms: 1 });
        expect(report.drift).toEqual([expect.objectContaining({ kind: 'foreign_vm', vm_id: otherVm.id, resolved: true })]);
        expect((await request(server.url).get(`/vms/${ownVm.id}`).set(bearer(admin))).body.status).toBe('created');
      }
      const hypervisor = await hypervisorOf(a);
      expect((await hypervisor.listVms()).map((vm) => vm.metadata?.vmId).sort()).toEqual([vmA.id, vmB.id].sort());
      hypervisor.close();
      // Nothing was repaired, so neither says it was (the log is flushed within 250 ms).
      await new Promise((resolve) => setTimeout(resolve, 600));
      for (const server of [a, b]) expect(readFileSync(server.logFile, 'utf8')).not.toContain('repaired drift');
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});
