import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { CliError, EXIT } from './errors';

/** What `vmplane login` saves for one API. */
export interface Credentials {
  username: string;
  token: string;
  /** ISO time the token stops working. */
  expires_at: string;
}

/** The config file: credentials per API root URL (see loginKey), so logging in to a second server keeps the first. */
export interface ConfigFile {
  version: 1;
  credentials: Record<string, Credentials>;
}

export const DEFAULT_API = 'http://127.0.0.1:8000';

/** $VMPLANE_CONFIG, else $XDG_CONFIG_HOME/vmplane/config.json, else ~/.config/vmplane/config.json. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VMPLANE_CONFIG) return resolve(env.VMPLANE_CONFIG);
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.config');
  return join(base, 'vmplane', 'config.json');
}

/**
 * An --api / VMPLANE_API value as the URL requests go to: http or https, no credentials,
 * query or fragment; host lower-cased, the scheme's default port and trailing slashes dropped.
 */
export function parseApiUrl(value: string): string {
  const text = value.trim();
  if (!/^https?:\/\//i.test(text)) {
    const guess = URL.canParse(`http://${text}`) && !text.includes('://') ? `; did you mean http://${text}?` : ' such as http://127.0.0.1:8000.';
    throw new InvalidArgumentError(`Expected an http:// or https:// URL${guess}`);
  }
  if (!URL.canParse(text)) throw new InvalidArgumentError('Expected an http:// or https:// URL such as http://127.0.0.1:8000.');
  const url = new URL(text);
  if (url.username || url.password) throw new InvalidArgumentError('Put no user name or password in the URL; sign in with: vmplane login.');
  if (url.search || url.hash) throw new InvalidArgumentError('Expected the API root URL, without a query or a fragment.');
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
}

/**
 * The key a login is saved under: the API URL with `localhost` read as 127.0.0.1, so that
 * http://localhost:8000/ and http://127.0.0.1:8000 share one login.
 */
export function loginKey(api: string): string {
  let url: string;
  try {
    url = parseApiUrl(api);
  } catch {
    return api; // not a URL (a file edited by hand): it matches only itself
  }
  return url.replace(/^(https?:\/\/)localhost(?=[:/]|$)/, '$1127.0.0.1');
}

export function readConfig(path: string): ConfigFile {
  if (!existsSync(path)) return { version: 1, credentials: {} };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new CliError(`config_invalid: ${path} is not valid JSON (${(error as Error).message}); delete it and run: vmplane login`);
  }
  const credentials = (parsed as Partial<ConfigFile>)?.credentials;
  if (typeof credentials !== 'object' || credentials === null) return { version: 1, credentials: {} };
  return { version: 1, credentials };
}

/** Writes the file with mode 0600 (its folder 0700), atomically: a reader never sees half a file. */
export function writeConfig(path: string, config: ConfigFile): void {
  const dir = dirname(path);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
    chmodSync(temporary, 0o600); // the umask may have removed bits, never added them; be explicit anyway
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw new CliError(`config_unwritable: cannot write ${path}: ${(error as Error).message}`);
  }
}

/** The saved keys that belong to this API (more than one only in files written before keys were normalised). */
export function savedKeys(config: ConfigFile, api: string): string[] {
  const key = loginKey(api);
  return Object.keys(config.credentials).filter((saved) => loginKey(saved) === key);
}

export function saveCredentials(config: ConfigFile, api: string, credentials: Credentials): void {
  for (const saved of savedKeys(config, api)) delete config.credentials[saved];
  config.credentials[loginKey(api)] = credentials;
}

/** Removes this API's login; returns whether there was one. */
export function removeCredentials(config: ConfigFile, api: string): boolean {
  const saved = savedKeys(config, api);
  for (const key of saved) delete config.credentials[key];
  return saved.length > 0;
}

/** The token to send: VMPLANE_TOKEN, else the one saved by `vmplane login` for this API. */
export function resolveToken(api: string, env: NodeJS.ProcessEnv, path: string): string {
  if (env.VMPLANE_TOKEN) return env.VMPLANE_TOKEN;
  const config = readConfig(path);
  const [key] = savedKeys(config, api);
  const saved = key === undefined ? undefined : config.credentials[key];
  if (!saved) throw new CliError(`not_logged_in: no saved token for ${api}; run: vmplane login (or set VMPLANE_TOKEN)`, EXIT.auth);
  if (Date.parse(saved.expires_at) <= Date.now()) {
    throw new CliError(`token_expired: the token for ${saved.username} at ${api} expired at ${saved.expires_at}; run: vmplane login`, EXIT.auth);
  }
  return saved.token;
}
