import request from 'supertest';
import { ORIGINAL_VM, bearer, createUser, login } from '../support/api';
import { ServerHandle, startServer } from '../support/server-process';

/** Admin user management, and tokens that follow the rights of the user they name (issue: tokens outlive rights). */
describe('users: admin management and token revocation', () => {
  let server: ServerHandle;
  let admin: string;

  beforeAll(async () => {
    server = await startServer();
    admin = await login(server.url, 'admin', 'adminpassword');
  });
  afterAll(() => server?.stop());

  const usersPage = async (token = admin) => request(server.url).get('/users?limit=200').set(bearer(token));

  it('creates a member when no role is given, and lists users to admins only', async () => {
    const created = await request(server.url).post('/users').set(bearer(admin)).send({ username: 'plain', password: 'plain-password' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ username: 'plain', role: 'member', disabled: false });
    const listed = await usersPage();
    expect(listed.status).toBe(200);
    expect(listed.body.items.map((u: { username: string }) => u.username)).toEqual(expect.arrayContaining(['admin', 'testuser', 'plain']));
    expect((await usersPage(await login(server.url))).status).toBe(403);
  });

  it('an admin demoted through the API loses admin rights on the token she already holds, at once', async () => {
    const boss = await createUser(server.url, admin, 'boss', 'admin');
    const bossId = (await request(server.url).get('/users/me').set(bearer(boss))).body.id;
    expect((await usersPage(boss)).status).toBe(200);
    const demoted = await request(server.url).patch(`/users/${bossId}`).set(bearer(admin)).send({ role: 'member' });
    expect(demoted.status).toBe(200);
    expect(demoted.body.role).toBe('member');
    const started = Date.now();
    const retried = await usersPage(boss);
    expect(retried.status).toBe(403);
    expect(Date.now() - started).toBeLessThan(1000);
    // The same token still works for what a member may do.
    expect((await request(server.url).get('/users/me').set(bearer(boss))).body.role).toBe('member');
  });

  it('a password change revokes every token issued before; the wrong current password is refused by field', async () => {
    const token = await createUser(server.url, admin, 'carol');
    const wrong = await request(server.url).post('/users/me/password').set(bearer(token)).send({ current_password: 'nope', new_password: 'a-new-passphrase' });
    expect(wrong.status).toBe(400);
    expect(wrong.body.errors).toEqual([{ field: 'current_password', message: 'is not your current password' }]);
    const changed = await request(server.url).post('/users/me/password').set(bearer(token)).send({ current_password: 'carol-password', new_password: 'a-new-passphrase' });
    expect(changed.status).toBe(204);
    const old = await request(server.url).get('/users/me').set(bearer(token));
    expect(old.status).toBe(401);
    expect(old.headers['content-type']).toMatch(/^application\/problem\+json/);
    await expect(login(server.url, 'carol', 'carol-password')).rejects.toThrow(/401/);
    const fresh = await login(server.url, 'carol', 'a-new-passphrase');
    expect((await request(server.url).get('/users/me').set(bearer(fresh))).status).toBe(200);
  });

  it('an admin sets a new password for a user who lost theirs: the old password and every old token stop working, the new one signs in', async () => {
    const token = await createUser(server.url, admin, 'resetme');
    const id = (await request(server.url).get('/users/me').set(bearer(token))).body.id;
    const short = await request(server.url).patch(`/users/${id}`).set(bearer(admin)).send({ password: 'short' });
    expect(short.status).toBe(400);
    expect(short.body.errors).toEqual([{ field: 'password', message: 'must be longer than or equal to 8 characters' }]);
    const byMember = await request(server.url).patch(`/users/${id}`).set(bearer(await login(server.url))).send({ password: 'taken-over-pass' });
    expect(byMember.status).toBe(403);
    expect((await request(server.url).get('/users/me').set(bearer(token))).status).toBe(200);

    const reset = await request(server.url).patch(`/users/${id}`).set(bearer(admin)).send({ password: 'a-reset-passphrase' });
    expect(reset.status).toBe(200);
    expect(reset.body).toMatchObject({ id, username: 'resetme', disabled: false });
    expect(JSON.stringify(reset.body)).not.toContain('a-reset-passphrase');
    expect((await request(server.url).get('/users/me').set(bearer(token))).status).toBe(401);
    await expect(login(server.url, 'resetme', 'resetme-password')).rejects.toThrow(/401/);
    const fresh = await login(server.url, 'resetme', 'a-reset-passphrase');
    expect((await request(server.url).get('/users/me').set(bearer(fresh))).body.username).toBe('resetme');
  });

  it('a disabled user cannot sign in and their tokens stop working; enabling lets them sign in again', async () => {
    const token = await createUser(server.url, admin, 'dave');
    const id = (await request(server.url).get('/users/me').set(bearer(token))).body.id;
    const disabled = await request(server.url).patch(`/users/${id}`).set(bearer(admin)).send({ disabled: true });
    expect(disabled.body).toMatchObject({ disabled: true });
    expect((await request(server.url).get('/vms').set(bearer(token))).status).toBe(401);
    await expect(login(server.url, 'dave', 'dave-password')).rejects.toThrow(/401/);
    await request(server.url).patch(`/users/${id}`).set(bearer(admin)).send({ disabled: false }).expect(200);
    expect((await request(server.url).get('/vms').set(bearer(token))).status).toBe(401);
    expect((await request(server.url).get('/vms').set(bearer(await login(server.url, 'dave', 'dave-password')))).status).toBe(200);
  });

  it('a user with VMs cannot be deleted; once they are gone, deleting answers 204 and their token is a 401, never a 500', async () => {
    const token = await createUser(server.url, admin, 'frank');
    const id = (await request(server.url).get('/users/me').set(bearer(token))).body.id;
    const vm = await request(server.url).post('/vms').set(bearer(token)).send({ ...ORIGINAL_VM, public_ip: null });
    expect(vm.status).toBe(201);
    const refused = await request(server.url).delete(`/users/${id}`).set(bearer(admin));
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 'user_has_vms', live_vms: 1 });
    await request(server.url).delete(`/vms/${vm.body.id}`).set(bearer(token)).expect(200);
    expect((await request(server.url).delete(`/users/${id}`).set(bearer(admin))).status).toBe(204);
    const afterwards = await request(server.url).post('/vms').set(bearer(token)).send({ ...ORIGINAL_VM, public_ip: null });
    expect(afterwards.status).toBe(401);
    expect((await request(server.url).get(`/users`).set(bearer(admin))).body.items.map((u: { id: string }) => u.id)).not.toContain(id);
    // The deleted user's VM record stays, for admins to read.
    expect((await request(server.url).get(`/vms/${vm.body.id}`).set(bearer(admin))).body.status).toBe('deleted');
    expect((await request(server.url).patch(`/users/${id}`).set(bearer(admin)).send({ role: 'admin' })).status).toBe(404);
  });

  it('refuses to demote, disable or delete the last admin who can sign in', async () => {
    const id = (await request(server.url).get('/users/me').set(bearer(admin))).body.id;
    for (const call of [
      request(server.url).patch(`/users/${id}`).set(bearer(admin)).send({ role: 'member' }),
      request(server.url).patch(`/users/${id}`).set(bearer(admin)).send({ disabled: true }),
      request(server.url).delete(`/users/${id}`).set(bearer(admin)),
    ]) {
      const response = await call;
      expect(response.status).toBe(409);
      expect(response.body.code).toBe('last_admin');
    }
  });
});
