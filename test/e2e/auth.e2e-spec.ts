import request from 'supertest';
import jwt from 'jsonwebtoken';
import { bearer, createUser, login, signToken } from '../support/api';
import { ServerHandle, startServer } from '../support/server-process';

describe('authentication and authorization', () => {
  let server: ServerHandle;
  let adminToken: string;
  let memberToken: string;

  beforeAll(async () => {
    server = await startServer({ env: { LOGIN_MAX_FAILURES: '3', LOGIN_LOCKOUT_SECONDS: '60' } });
    adminToken = await login(server.url, 'admin', 'adminpassword');
    memberToken = await login(server.url);
  });
  afterAll(() => server?.stop());

  describe('POST /token', () => {
    it('issues a bearer token for a form login, and also accepts JSON', async () => {
      const form = await request(server.url).post('/token').type('form').send({ username: 'testuser', password: 'testpassword', grant_type: 'password' });
      expect(form.status).toBe(200);
      expect(form.body.token_type).toBe('bearer');
      const claims = jwt.decode(form.body.access_token, { complete: true }) as jwt.Jwt;
      expect(claims.header.alg).toBe('HS256');
      expect(claims.payload).toMatchObject({ sub: expect.any(String), role: 'member', iss: 'vmplane', aud: 'vmplane-api' });
      const payload = claims.payload as jwt.JwtPayload;
      expect(payload.exp! - payload.iat!).toBe(3600);

      const json = await request(server.url).post('/token').send({ username: 'testuser', password: 'testpassword' });
      expect(json.status).toBe(200);
    });

    it('answers wrong credentials and unknown users with the same 401', async () => {
      const wrong = await request(server.url).post('/token').type('form').send({ username: 'admin', password: 'nope' });
      const unknown = await request(server.url).post('/token').type('form').send({ username: 'nobody', password: 'nope' });
      for (const response of [wrong, unknown]) {
        expect(response.status).toBe(401);
        expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(response.body).toMatchObject({ code: 'invalid_credentials', detail: 'Incorrect username or password' });
      }
    });

    it('names missing form fields', async () => {
      const response = await request(server.url).post('/token').type('form').send({ username: 'testuser' });
      expect(response.status).toBe(400);
      expect(response.body.errors).toEqual([{ field: 'password', message: 'is required' }]);
    });

    it('throttles repeated failures for one username with 429 and Retry-After, even for the right password', async () => {
      const username = 'throttled-user';
      await createUser(server.url, adminToken, username);
      for (let i = 0; i < 3; i++) {
        const response = await request(server.url).post('/token').type('form').send({ username, password: 'wrong' });
        expect(response.status).toBe(401);
      }
      const locked = await request(server.url).post('/token').type('form').send({ username, password: `${username}-password` });
      expect(locked.status).toBe(429);
      expect(locked.body.code).toBe('too_many_login_attempts');
      expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
      // Other usernames are unaffected.
      expect((await request(server.url).post('/token').type('form').send({ username: 'testuser', password: 'testpassword' })).status).toBe(200);
    });

    it("ends a lockout at once when an admin resets the user's password; the old password is then a plain 401", async () => {
      const username = 'locked-then-reset';
      const token = await createUser(server.url, adminToken, username);
      const id = (await request(server.url).get('/users/me').set(bearer(token))).body.id;
      for (let i = 0; i < 3; i++) await request(server.url).post('/token').type('form').send({ username, password: 'wrong' }).expect(401);
      await request(server.url).post('/token').type('form').send({ username, password: `${username}-password` }).expect(429);

      await request(server.url).patch(`/users/${id}`).set(bearer(adminToken)).send({ password: 'reset-by-admin' }).expect(200);
      expect((await request(server.url).post('/token').type('form').send({ username, password: `${username}-password` })).status).toBe(401);
      const fresh = await request(server.url).post('/token').type('form').send({ username, password: 'reset-by-admin' });
      expect(fresh.status).toBe(200);
      expect((await request(server.url).get('/users/me').set(bearer(fresh.body.access_token))).body.username).toBe(username);
    });
  });

  describe('tokens', () => {
    const me = (token: string) => request(server.url).get('/users/me').set(bearer(token));

    it('accepts a valid token', async () => {
      const response = await me(memberToken);
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ username: 'testuser', role: 'member' });
    });

    it('refuses a missing or malformed Authorization header', async () => {
      expect((await request(server.url).get('/vms')).status).toBe(401);
      expect((await request(server.url).get('/vms').set('Authorization', `Token ${memberToken}`)).status).toBe(401);
      expect((await request(server.url).get('/vms').set('Authorization', 'Bearer not.a.jwt')).status).toBe(401);
    });

    it('refuses alg:none, another key, an expired token, and the wrong issuer or audience', async () => {
      const { sub } = jwt.decode(memberToken) as jwt.JwtPayload;
      const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(
        JSON.stringify({ sub, role: 'admin', iss: 'vmplane', aud: 'vmplane-api', exp: Math.floor(Date.now() / 1000) + 600 }),
      ).toString('base64url')}.`;
      const forged = signToken({ sub, role: 'admin' }, {}, 'some-other-secret-that-is-long-enough-000');
      const expired = signToken({ sub, role: 'member' }, { expiresIn: -10 });
      const wrongIssuer = signToken({ sub, role: 'member' }, { issuer: 'someone-else' });
      const wrongAudience = signToken({ sub, role: 'member' }, { audience: 'other-api' });
      for (const token of [unsigned, forged, expired, wrongIssuer, wrongAudience]) {
        const response = await me(token);
        expect(response.status).toBe(401);
        expect(response.body.code).toBe('unauthenticated');
      }
      expect((await me(expired)).body.detail).toBe('The access token has expired');
    });

    it('takes the role from the user, not from the token: a token claiming another role acts as the member it names', async () => {
      const { sub } = jwt.decode(memberToken) as jwt.JwtPayload;
      const claimsRoot = signToken({ sub, role: 'root' });
      expect((await me(claimsRoot)).body.role).toBe('member');
      expect((await request(server.url).get('/users').set(bearer(signToken({ sub, role: 'admin' })))).status).toBe(403);
    });

    it('refuses a validly signed token whose subject is not a user', async () => {
      expect((await me(signToken({ sub: '00000000-0000-7000-8000-000000000000', role: 'admin' }))).status).toBe(401);
    });
  });

  describe('users', () => {
    it('lets an admin create users, and refuses members with 403', async () => {
      const body = { username: 'alice', password: 'alice-password', role: 'member' };
      const denied = await request(server.url).post('/users').set(bearer(memberToken)).send(body);
      expect(denied.status).toBe(403);
      expect(denied.body.code).toBe('forbidden');

      const created = await request(server.url).post('/users').set(bearer(adminToken)).send(body);
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ username: 'alice', role: 'member' });
      expect(created.body).not.toHaveProperty('password');
      expect(created.body).not.toHaveProperty('password_hash');

      const duplicate = await request(server.url).post('/users').set(bearer(adminToken)).send(body);
      expect(duplicate.status).toBe(409);
      expect(duplicate.body.code).toBe('username_taken');

      expect((await login(server.url, 'alice', 'alice-password')).length).toBeGreaterThan(20);
    });

    it('validates new users', async () => {
      const response = await request(server.url)
        .post('/users')
        .set(bearer(adminToken))
        .send({ username: 'Bad Name', password: 'short', role: 'superuser' });
      expect(response.status).toBe(400);
      expect(response.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['password', 'role', 'username']);
    });

    it('shows the caller with quota and usage', async () => {
      const response = await request(server.url).get('/users/me').set(bearer(memberToken));
      expect(response.body.quota).toEqual({ vcpus: 512, memory_mib: 4194304, gpus: 16, gpu_milli: 16000, vms: 100 });
      expect(response.body.usage).toEqual(expect.objectContaining({ vms: expect.any(Number), gpus: expect.any(Number) }));
    });
  });
});
