import request from 'supertest';
import { ORIGINAL_VM, bearer, login } from '../support/api';
import { ServerHandle, startServer } from '../support/server-process';

/** Usage reports over HTTP on a real process: the caller's own, an admin's view of anyone's, and bad windows. */
describe('usage reports', () => {
  let server: ServerHandle;
  let admin: string;
  let member: string;

  beforeAll(async () => {
    server = await startServer();
    admin = await login(server.url, 'admin', 'adminpassword');
    member = await login(server.url);
  });
  afterAll(() => server?.stop());

  it("reports the caller's VM-hours for a VM that ran, and an admin sees the same report for that user", async () => {
    const start = new Date(Date.now() - 1000).toISOString();
    const created = await request(server.url).post('/vms').set(bearer(member)).send({ ...ORIGINAL_VM, name: 'metered', public_ip: null });
    expect(created.status).toBe(201);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await request(server.url).delete(`/vms/${created.body.id}`).set(bearer(member))).status).toBe(200);

    const mine = await request(server.url).get('/usage').query({ start }).set(bearer(member));
    expect(mine.status).toBe(200);
    const metered = mine.body.vms.find((vm: { vm_id: string }) => vm.vm_id === created.body.id);
    expect(metered).toMatchObject({ name: 'metered', gpu_model: null, gpu_profile: null, gpu_hours: 0 });
    // At least the second it ran, at most the time since the window opened.
    expect(metered.vm_hours).toBeGreaterThanOrEqual(1 / 3600 - 0.0001);
    expect(metered.vm_hours).toBeLessThan((Date.now() - Date.parse(start)) / 3_600_000 + 0.0001);
    const me = (await request(server.url).get('/users/me').set(bearer(member))).body;
    expect(mine.body.user_id).toBe(me.id);

    const seen = await request(server.url).get(`/users/${me.id}/usage`).query({ start, end: mine.body.end }).set(bearer(admin));
    expect(seen.status).toBe(200);
    expect(seen.body.vms.find((vm: { vm_id: string }) => vm.vm_id === created.body.id)).toEqual(metered);
  });

  it("guards another user's report, and names the field of a bad window", async () => {
    const adminId = (await request(server.url).get('/users/me').set(bearer(admin))).body.id;
    expect((await request(server.url).get(`/users/${adminId}/usage`).set(bearer(member))).status).toBe(403);
    expect((await request(server.url).get('/users/00000000-0000-7000-8000-0000000000ff/usage').set(bearer(admin))).status).toBe(404);

    const notADate = await request(server.url).get('/usage').query({ start: 'yesterday' }).set(bearer(member));
    expect(notADate.status).toBe(400);
    expect(notADate.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(notADate.body.errors).toEqual([{ field: 'start', message: expect.stringContaining('ISO 8601') }]);
    const backwards = await request(server.url).get('/usage').query({ start: '2026-11-02T00:00:00Z', end: '2026-11-01T00:00:00Z' }).set(bearer(member));
    expect(backwards.status).toBe(400);
    expect(backwards.body.errors).toEqual([{ field: 'start', message: 'must be before end' }]);
  });
});
