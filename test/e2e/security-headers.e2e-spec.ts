/**
 * Issue 15 §5 and issue 12's smaller items: what a cloud API's users expect
 * at the HTTP edge. WWW-Authenticate on 401 (RFC 6750), no-store on tokens
 * (RFC 6749 §5.1), nosniff everywhere, a CSP on Swagger UI and nothing else of
 * swagger-ui-dist served, /metrics behind METRICS_TOKEN when set, 405 with
 * Allow, a 413 that states the limit, and per-status examples in the document.
 */
import request from 'supertest';
import { bearer, headersOnly, login, signToken } from '../support/api';
import { ServerHandle, startServer } from '../support/server-process';

describe('security headers and HTTP semantics', () => {
  let server: ServerHandle;
  let member: string;

  beforeAll(async () => {
    server = await startServer();
    member = await login(server.url);
  });
  afterAll(() => server?.stop());

  describe('401 carries WWW-Authenticate: Bearer', () => {
    it('without an error code when no token was sent', async () => {
      for (const headers of [{}, { Authorization: 'Basic dXNlcjpwYXNz' }]) {
        const response = await request(server.url).get('/vms').set(headers);
        expect(response.status).toBe(401);
        expect(response.headers['www-authenticate']).toBe('Bearer realm="vmplane"');
      }
    });

    it('with error="invalid_token" when the token sent was refused', async () => {
      const cases: [string, string][] = [
        ['not.a.jwt', 'The access token is invalid'],
        [signToken({ sub: 'x', role: 'member' }, { expiresIn: -10 }), 'The access token has expired'],
        [signToken({ sub: 'x', role: 'member' }, {}, 'another-key-0123456789abcdef0123456789'), 'The access token is invalid'],
      ];
      for (const [token, description] of cases) {
        const response = await request(server.url).get('/vms').set(bearer(token));
        expect(response.status).toBe(401);
        expect(response.headers['www-authenticate']).toBe(`Bearer realm="vmplane", error="invalid_token", error_description="${description}"`);
      }
    });

    it('on a failed sign-in too (no error code: the token endpoint takes no token)', async () => {
      const response = await request(server.url).post('/token').type('form').send({ username: 'testuser', password: 'wrong' });
      expect(response.status).toBe(401);
      expect(response.headers['www-authenticate']).toBe('Bearer realm="vmplane"');
    });
  });

  it('/token answers are never cached', async () => {
    const ok = await request(server.url).post('/token').type('form').send({ username: 'testuser', password: 'testpassword' });
    expect(ok.status).toBe(200);
    expect(ok.headers).toMatchObject({ 'cache-control': 'no-store', pragma: 'no-cache' });
    const refused = await request(server.url).post('/token').type('form').send({ username: 'testuser' });
    expect(refused.status).toBe(400);
    expect(refused.headers['cache-control']).toBe('no-store');
  });

  it('every response carries X-Content-Type-Options: nosniff', async () => {
    const responses = await Promise.all([
      request(server.url).get('/health'),
      request(server.url).get('/vms').set(bearer(member)),
      request(server.url).get('/vms'),
      request(server.url).get('/nowhere'),
      request(server.url).get('/metrics'),
      request(server.url).get('/openapi.json'),
      request(server.url).get('/docs'),
      request(server.url).get('/docs/swagger-ui.css'),
    ]);
    for (const response of responses) expect({ url: response.request.url, nosniff: response.headers['x-content-type-options'] }).toEqual({ url: response.request.url, nosniff: 'nosniff' });
  });

  describe('Swagger UI', () => {
    it('pages carry a Content-Security-Policy and X-Frame-Options: DENY', async () => {
      for (const path of ['/docs', '/docs/swagger-ui-init.js', '/docs/swagger-ui-bundle.js']) {
        const response = await request(server.url).get(path);
        expect({ path, status: response.status }).toEqual({ path, status: 200 });
        expect(response.headers['x-frame-options']).toBe('DENY');
        const csp = response.headers['content-security-policy'];
        expect(csp).toContain("default-src 'none'");
        expect(csp).toContain("script-src 'self'");
        expect(csp).toContain("connect-src 'self'");
        expect(csp).toContain("frame-ancestors 'none'");
      }
    });

    it('sends /docs/ to /docs, where the files the page names resolve', async () => {
      const response = await request(server.url).get('/docs/?x=1').redirects(0);
      expect({ status: response.status, location: response.headers.location }).toEqual({ status: 301, location: '/docs?x=1' });
      const page = new URL('/docs', server.url);
      const html = (await request(server.url).get('/docs')).text;
      const assets = [...html.matchAll(/(?:src|href)=["']([^"']+\.(?:js|css|png))["']/g)].map((m) => new URL(m[1], page).pathname);
      expect(assets.length).toBeGreaterThanOrEqual(4);
      for (const path of assets) expect({ path, status: (await request(server.url).get(path)).status }).toEqual({ path, status: 200 });
    });

    it('serves what the page loads and nothing else of swagger-ui-dist', async () => {
      const html = (await request(server.url).get('/docs')).text;
      const loaded = [...html.matchAll(/(?:src|href)=["']\.?\/?(?:docs\/)?([\w.-]+\.(?:js|css|png))["']/g)].map((m) => m[1]);
      expect(loaded).toEqual(expect.arrayContaining(['swagger-ui.css', 'swagger-ui-bundle.js', 'swagger-ui-standalone-preset.js', 'swagger-ui-init.js']));
      for (const file of loaded) expect({ file, status: (await request(server.url).get(`/docs/${file}`)).status }).toEqual({ file, status: 200 });
      for (const file of ['swagger-ui-bundle.js.map', 'swagger-ui.js.map', 'swagger-ui.css.map', 'README.md', 'package.json', 'index.html', 'index.js', 'absolute-path.js', 'LICENSE', 'swagger-initializer.js', '../package.json']) {
        const response = await request(server.url).get(`/docs/${file}`);
        expect({ file, status: response.status }).toEqual({ file, status: 404 });
      }
    });

    it('offers the OAuth2 password flow against /token beside bearer, in the document Swagger UI loads', async () => {
      const init = (await request(server.url).get('/docs/swagger-ui-init.js')).text;
      const document = (await request(server.url).get('/openapi.json')).body;
      expect(document.components.securitySchemes).toMatchObject({
        bearer: { type: 'http', scheme: 'bearer' },
        oauth2: { type: 'oauth2', flows: { password: { tokenUrl: '/token', scopes: {} } } },
      });
      expect(document.paths['/vms'].post.security).toEqual([{ bearer: [] }, { oauth2: [] }]);
      expect(init).toContain('"tokenUrl": "/token"');
    });

    it('shows each error response with its own example', async () => {
      const document = (await request(server.url).get('/openapi.json')).body;
      const examples = (path: string, method: string, status: string) =>
        document.paths[path][method].responses[status].content['application/problem+json'].examples as Record<string, { value: { status: number; code: string } }>;
      expect(Object.keys(examples('/token', 'post', '429'))).toEqual(['too_many_login_attempts', 'too_many_requests']);
      expect(Object.keys(examples('/token', 'post', '401'))).toEqual(['invalid_credentials']);
      expect(Object.keys(examples('/vms/{id}', 'get', '404'))).toEqual(['not_found']);
      expect(Object.keys(examples('/vms', 'post', '503'))).toEqual(['insufficient_capacity', 'hypervisor_unavailable']);
      expect(Object.keys(examples('/vms', 'post', '415'))).toEqual(['unsupported_media_type']);
      for (const [path, item] of Object.entries(document.paths as Record<string, Record<string, { responses: Record<string, { content?: Record<string, { examples?: object }> }> }>>)) {
        for (const [method, operation] of Object.entries(item)) {
          for (const [status, response] of Object.entries(operation.responses)) {
            if (!/^[45]/.test(status)) continue;
            for (const [code, example] of Object.entries(response.content!['application/problem+json'].examples as Record<string, { value: { status: number; code: string } }>)) {
              expect({ where: `${method} ${path} ${status}`, status: example.value.status, code: example.value.code }).toEqual({ where: `${method} ${path} ${status}`, status: Number(status), code });
            }
          }
        }
      }
    });
  });

  describe('methods and limits', () => {
    it.each([
      ['PUT', '/vms', 'GET, HEAD, POST'],
      ['PUT', '/vms/01900000-0000-7000-8000-000000000000', 'DELETE, GET, HEAD, PATCH'],
      ['DELETE', '/hosts', 'GET, HEAD, POST'],
      ['GET', '/token', 'POST'],
    ])('%s %s is a 405 with Allow: %s', async (method, path, allow) => {
      const response = await request(server.url)[method.toLowerCase() as 'put'](path).set(bearer(member));
      expect(response.status).toBe(405);
      expect(response.headers.allow).toBe(allow);
      expect(response.body).toMatchObject({ code: 'method_not_allowed', allowed: allow.split(', ') });
    });

    it('an unknown path is still a 404, and no answer echoes the query string', async () => {
      expect((await request(server.url).get('/nowhere')).status).toBe(404);
      const response = await request(server.url).get('/token?username=testuser&password=S3cret-in-query');
      expect(response.status).toBe(405);
      expect(JSON.stringify(response.body)).not.toContain('S3cret');
      const unknown = await request(server.url).get('/nowhere?password=S3cret-in-query');
      expect(unknown.body.detail).toBe('route GET /nowhere not found');
    });

    it('the 413 states the limit in bytes', async () => {
      const response = await headersOnly(server.url, 'POST', '/vms', { ...bearer(member), 'content-type': 'application/json' }, 1_100_000);
      expect(response.status).toBe(413);
      expect(response.body).toMatchObject({ code: 'payload_too_large', detail: 'The request body is larger than the limit of 1048576 bytes', limit_bytes: 1048576 });
    });
  });
});

describe('/metrics with METRICS_TOKEN', () => {
  const METRICS_TOKEN = 'metrics-scrape-token-0123456789';
  let server: ServerHandle;

  beforeAll(async () => {
    server = await startServer({ env: { METRICS_TOKEN } });
  });
  afterAll(() => server?.stop());

  it('answers only the configured bearer token', async () => {
    const none = await request(server.url).get('/metrics');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="vmplane"');
    const wrong = await request(server.url).get('/metrics').set(bearer('metrics-scrape-token-wrong'));
    expect(wrong.status).toBe(401);
    expect(wrong.headers['www-authenticate']).toContain('error="invalid_token"');
    const user = await request(server.url).get('/metrics').set(bearer(await login(server.url)));
    expect(user.status).toBe(401);
    const right = await request(server.url).get('/metrics').set(bearer(METRICS_TOKEN));
    expect(right.status).toBe(200);
    expect(right.text).toContain('vmplane_http_request_duration_seconds');
  });
});
