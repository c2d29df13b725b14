import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { Client, seededRandom } from '../../libs/sdk/src';
import { bearer, eventually, login } from '../support/api';
import { writeFleetFile } from '../support/fleet';
import { startServer } from '../support/server-process';

const KILLS = Number(process.env.CRASH_KILLS ?? 24);
const SEED = process.env.CRASH_SEED ?? String(Date.now());

interface Accepted {
  kind: 'create' | 'delete' | 'stop' | 'start' | 'shelve' | 'unshelve';
  vmId: string;
  operationId: string;
}

/**
 * Fires asynchronous creates and deletes at a real server, kills it with
 * SIGKILL at random moments, restarts it, and at the end checks that the
 * platform's records and the simulated hypervisor's state file agree.
 */
describe('kill -9 at random moments while VMs are created and deleted', () => {
  it(`leaves no orphan, no ghost, no double-bound GPU and no lost operation (${KILLS} kills, seed ${SEED})`, async () => {
    const random = seededRandom(SEED);
    const dataDir = mkdtempSync(join(tmpdir(), 'vmplane-crash-'));
    const fleetFile = writeFleetFile(dataDir, [
      { name: 'crash-gpu-a', gpus: 8 },
      { name: 'crash-gpu-b', gpus: 8 },
      { name: 'crash-gpu-c', gpus: 4, product: 'NVIDIA L40S', memoryMib: 46068 },
      { name: 'crash-cpu', gpus: 0, cpuCores: 512 },
    ]);
    const env = {
      FLEET_FILE: fleetFile,
      SDK_LATENCY_MS: '150',
      SDK_FAILURE_RATE: '0.01',
      SDK_SEED: SEED,
      QUOTA_GPUS: '10000',
      QUOTA_VMS: '10000',
      QUOTA_VCPUS: '100000',
      QUOTA_MEMORY_MIB: '100000000',
      HYPERVISOR_RETRY_BASE_MS: '20',
      RECONCILE_INTERVAL_MS: '1000',
    };
    const accepted: Accepted[] = [];
    const known: string[] = [];
    let requests = 0;

    let strays = 0;
    let installationId: string | undefined;
    for (let kill = 0; kill < KILLS; kill++) {
      if (kill > 0 && kill % 4 === 0) {
        // While the platform is down, a VM of this installation appears on the hypervisor that the platform never
        // recorded (made through the SDK, as a create that crashed before its intent was written would leave it).
        const hypervisor = new Client('test-sdk-key', { statePath: join(dataDir, 'hypervisor.sqlite'), failureRate: 0 });
        hypervisor.authenticate();
        const vmId = `stray-${kill}-${Math.floor(random() * 1e9)}`;
        await hypervisor.createVm({ name: 'stray', cpuCores: 1, memory: 256, diskSize: 1, metadata: { installationId: installationId!, vmId, ownerId: 'nobody' } });
        hypervisor.close();
        strays++;
      }
      const server = await startServer({ dataDir, env });
      installationId ??= (await server.query<{ id: string }>('SELECT id FROM installation'))[0].id;
      const token = await login(server.url);
      let firing = true;
      const fire = async () => {
        while (firing) {
          requests++;
          try {
            const roll = random();
            if (known.length > 0 && roll < 0.4) {
              // Any action on any VM: the ones its state does not allow answer 409 and are not counted.
              const vmId = known[Math.floor(random() * known.length)];
              const kind = (['delete', 'delete', 'stop', 'start', 'shelve', 'unshelve'] as const)[Math.floor(random() * 6)];
              const call = kind === 'delete' ? request(server.url).delete(`/vms/${vmId}`) : request(server.url).post(`/vms/${vmId}/${kind}`).send({});
              const response = await call.set(bearer(token)).set('Prefer', 'respond-async');
              if (response.status === 202) accepted.push({ kind, vmId, operationId: response.headers.location.split('/').pop()! });
            } else {
              const gpus = random() < 0.6 ? 1 + Math.floor(random() * 2) : 0;
              const response = await request(server.url)
                .post('/vms')
                .set(bearer(token))
                .set('Prefer', 'respond-async')
                .send({ name: `crash-${requests}`, cpu_cores: 1, memory: 512, disk_size: 5, gpu_count: gpus });
              if (response.status === 202) {
                accepted.push({ kind: 'create', vmId: response.body.id, operationId: response.headers.location.split('/').pop()! });
                known.push(response.body.id);
              }
            }
          } catch {
            // The connection died with the server: the request may or may not have been recorded.
          }
        }
      };
      const clients = [fire(), fire(), fire(), fire()];
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.floor(random() * 900)));
      await server.kill();
      firing = false;
      await Promise.all(clients);
    }

    // Recovery: a last start, no new work, until every operation has finished.
    const server = await startServer({ dataDir, env });
    const platformPath = join(dataDir, 'vmplane.sqlite');
    const platform = new Database(platformPath, { readonly: true });
    try {
      await eventually(
        async () =>
          (platform.prepare(`SELECT count(*) AS n FROM operations WHERE status IN ('pending', 'running')`).get() as { n: number }).n === 0 &&
          (platform.prepare(`SELECT count(*) AS n FROM vms WHERE status IN ('provisioning', 'deleting')`).get() as { n: number }).n === 0,
        60_000,
        200,
      );
      const admin = await login(server.url, 'admin', 'adminpassword');
      await request(server.url).post('/admin/reconciliation').set(bearer(admin)).expect(200);
      const last = await request(server.url).post('/admin/reconciliation').set(bearer(admin)).expect(200);
      expect(last.body).toMatchObject({ orphans_found: 0, missing_vms_failed: 0, error: null });
    } finally {
      await server.stop();
    }

    const hypervisor = new Database(server.hypervisorStatePath, { readonly: true });
    const hvRows = hypervisor.prepare('SELECT id, gpus, labels, power_state FROM vms').all() as { id: string; gpus: string; labels: string; power_state: string }[];
    const shelvedDisks = new Set((hypervisor.prepare('SELECT hypervisor_id FROM shelved_disks').all() as { hypervisor_id: string }[]).map((r) => r.hypervisor_id));
    hypervisor.close();
    const vms = platform.prepare('SELECT id, status, hypervisor_id, released_at, power_state FROM vms').all() as {
      id: string;
      status: string;
      hypervisor_id: string | null;
      released_at: string | null;
      power_state: string;
    }[];
    const ops = platform.prepare('SELECT id, vm_id, action, status FROM operations').all() as { id: string; vm_id: string; action: string; status: string }[];
    const runs = platform.prepare('SELECT SUM(orphans_found) AS found, SUM(orphans_removed) AS removed, SUM(stuck_operations_resumed) AS resumed, SUM(missing_vms_failed) AS missing FROM reconciliation_runs').get() as Record<string, number>;
    const boundGpus = platform.prepare('SELECT g.uuid, g.vm_id FROM gpus g WHERE g.vm_id IS NOT NULL').all() as { uuid: string; vm_id: string }[];
    const liveAllocations = platform.prepare('SELECT gpu_id, COUNT(*) AS n FROM gpu_allocations WHERE released_at IS NULL GROUP BY gpu_id HAVING COUNT(*) > 1').all();
    const resumedOps = (platform.prepare('SELECT COUNT(*) AS n FROM operations WHERE attempts > 1').get() as { n: number }).n;
    platform.close();

    // Every VM is in a final state.
    expect(vms.filter((vm) => !['created', 'shelved', 'deleted', 'failed'].includes(vm.status))).toEqual([]);
    // A shelved VM is not on the hypervisor as a VM, its disk is kept there, and it holds nothing.
    const shelved = vms.filter((vm) => vm.status === 'shelved');
    expect(shelved.filter((vm) => !vm.hypervisor_id || !shelvedDisks.has(vm.hypervisor_id) || vm.released_at === null)).toEqual([]);

    // Live VMs match one for one: no orphan on the hypervisor, no ghost in the platform.
    const live = vms.filter((vm) => vm.status === 'created');
    const liveByHv = new Map(live.map((vm) => [vm.hypervisor_id, vm.id]));
    const orphans = hvRows.filter((row) => !liveByHv.has(row.id));
    const hvIds = new Set(hvRows.map((row) => row.id));
    const ghosts = live.filter((vm) => !vm.hypervisor_id || !hvIds.has(vm.hypervisor_id));
    expect(orphans).toEqual([]);
    expect(ghosts).toEqual([]);
    for (const row of hvRows) expect(JSON.parse(row.labels)).toContain(`vmplane.vm-id=${liveByHv.get(row.id)}`);
    // Power states agree, VM by VM.
    const powerOnHv = new Map(hvRows.map((row) => [row.id, row.power_state]));
    const powerMismatches = live.filter((vm) => powerOnHv.get(vm.hypervisor_id!) !== vm.power_state);
    expect(powerMismatches).toEqual([]);
    // Resources are held exactly by the live VMs.
    expect(vms.filter((vm) => vm.status !== 'created' && vm.released_at === null)).toEqual([]);

    // No GPU is bound to two VMs, on either side, and both sides agree on the bindings.
    expect(liveAllocations).toEqual([]);
    const attached = hvRows.flatMap((row) => (JSON.parse(row.gpus) as string[]).map((uuid) => [uuid, liveByHv.get(row.id)] as const));
    expect(new Set(attached.map(([uuid]) => uuid)).size).toBe(attached.length);
    expect(new Map(attached)).toEqual(new Map(boundGpus.map((g) => [g.uuid, g.vm_id] as const)));

    // No operation is lost: every 2xx has its operation, finished, for its VM.
    const opsById = new Map(ops.map((op) => [op.id, op]));
    const lost = accepted.filter((a) => {
      const op = opsById.get(a.operationId);
      return !op || op.vm_id !== a.vmId || op.action !== a.kind;
    });
    expect(lost).toEqual([]);
    expect(ops.filter((op) => op.status === 'pending' || op.status === 'running')).toEqual([]);

    const summary = {
      seed: SEED,
      kills: KILLS,
      requests,
      accepted: accepted.length,
      operations: ops.length,
      resumed_operations: resumedOps,
      strays_injected: strays,
      orphans_found: runs.found ?? 0,
      orphans_removed: runs.removed ?? 0,
      live_vms: live.length,
      hypervisor_vms: hvRows.length,
      mismatches: orphans.length + ghosts.length + lost.length + powerMismatches.length,
      shelved_vms: shelved.length,
      power_states: Object.fromEntries(['running', 'shut_off'].map((p) => [p, live.filter((vm) => vm.power_state === p).length])),
      accepted_by_action: Object.fromEntries(['create', 'delete', 'stop', 'start', 'shelve', 'unshelve'].map((k) => [k, accepted.filter((a) => a.kind === k).length])),
    };
    process.stdout.write(`\nCRASH TEST SUMMARY ${JSON.stringify(summary)}\n`);
    expect(accepted.length).toBeGreaterThan(KILLS);
    expect(runs.removed).toBeGreaterThanOrEqual(strays);
  });
});
