import http from 'node:http';
import request from 'supertest';
import jwt from 'jsonwebtoken';
import { TEST_JWT_SECRET } from './server-process';

export const ORIGINAL_VM = {
  name: 'test-vm',
  cpu_cores: 2,
  memory: 4096,
  disk_size: 50,
  public_ip: '192.168.1.1',
  labels: ['test'],
};

export async function login(url: string, username = 'testuser', password = 'testpassword'): Promise<string> {
  const response = await request(url).post('/token').type('form').send({ username, password });
  if (response.status !== 200) throw new Error(`login failed: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body.access_token as string;
}

export function bearer(token: string): { Authorization: string } {
  return { Authorization: `Bearer ${token}` };
}

/**
 * Sends a request's headers, announcing `contentLength` bytes of body, and none of the body: for limits the
 * server must enforce from the length alone. (Sending an oversized body raced the server's close after its
 * 413, an EPIPE on the client when the machine was busy.)
 */
export function headersOnly(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  contentLength: number,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${path}`, { method, headers: { ...headers, 'content-length': String(contentLength) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text) });
      });
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}

/** Creates a user through the admin API and returns a token for it. */
export async function createUser(url: string, adminToken: string, username: string, role = 'member'): Promise<string> {
  const password = `${username}-password`;
  const response = await request(url).post('/users').set(bearer(adminToken)).send({ username, password, role });
  if (response.status !== 201) throw new Error(`create user failed: ${response.status} ${JSON.stringify(response.body)}`);
  return login(url, username, password);
}

/** Signs a token with the test server's key, for expiry and claim tests. */
export function signToken(claims: Record<string, unknown>, options: jwt.SignOptions = {}, secret = TEST_JWT_SECRET): string {
  return jwt.sign(claims, secret, { algorithm: 'HS256', issuer: 'vmplane', audience: 'vmplane-api', expiresIn: 3600, ...options });
}

/** Polls until `check` returns a value, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | null | undefined | false>, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
}
