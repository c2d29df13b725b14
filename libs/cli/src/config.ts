import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { CliError, EXIT } from './errors';

/** What `vmplane login` saves for one API. */
export interface Credentials {
  username: string;
  token: string;
  /** ISO time the token stops working. */
  expires_at: string;
}

/** The config file: credentials per API root URL, so logging in to a second server keeps the first. */
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

/** The key credentials are stored under: the URL without trailing slashes. */
export function apiKey(api: string): string {
  return api.replace(/\/+$/, '');
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

/** The token to send: VMPLANE_TOKEN, else the one saved by `vmplane login` for this API. */
export function resolveToken(api: string, env: NodeJS.ProcessEnv, path: string): string {
  if (env.VMPLANE_TOKEN) return env.VMPLANE_TOKEN;
  const saved = readConfig(path).credentials[apiKey(api)];
  if (!saved) throw new CliError(`not_logged_in: no saved token for ${apiKey(api)}; run: vmplane login (or set VMPLANE_TOKEN)`, EXIT.auth);
  if (Date.parse(saved.expires_at) <= Date.now()) {
    throw new CliError(`token_expired: the token for ${saved.username} at ${apiKey(api)} expired at ${saved.expires_at}; run: vmplane login`, EXIT.auth);
  }
  return saved.token;
}
