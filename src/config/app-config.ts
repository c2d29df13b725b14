import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';

export type DatabaseConfig = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

export type HypervisorDriver = 'simulator' | 'libvirt';

/** A libvirt connection URI: `driver[+transport]://[user@][host][:port]/path[?query]` (qemu:///system, qemu+ssh://ops@gpu-17/system). */
export const LIBVIRT_URI = /^[a-z][a-z0-9]*(\+[a-z]+)?:\/\/([A-Za-z0-9._~%-]+@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*)(:\d{1,5})?\/[A-Za-z0-9._~%\/-]*(\?[A-Za-z0-9._~%=&\/-]*)?$/;
const LIBVIRT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * Everything the server reads from its environment, validated once at start.
 * Injected by class token; nothing else reads process.env.
 */
export class AppConfig {
  port: number;
  host: string;
  database: DatabaseConfig;
  demo: boolean;
  fleetFile: string | null;
  logLevel: string;
  /** When set, GET /metrics requires `Authorization: Bearer <this>`. */
  metricsToken: string | null;

  jwtSecret: string;
  jwtIssuer: string;
  jwtAudience: string;
  jwtTtlSeconds: number;
  loginMaxFailures: number;
  loginLockoutSeconds: number;
  /** POST /token attempts per client address per minute (a token bucket of this size). */
  tokenRequestsPerMinute: number;
  /** Fastify's trustProxy: the proxies whose X-Forwarded-For names the client; null trusts none. */
  trustProxy: string | null;

  /** Which implementation of the hypervisor SDK the HypervisorModule builds. */
  hypervisorDriver: HypervisorDriver;
  sdkApiKey: string;
  sdkFailureRate: number;
  sdkLatencyMs: number;
  sdkStatePath: string;
  sdkSeed: string | null;

  hypervisorMaxAttempts: number;
  hypervisorRetryBaseMs: number;
  hypervisorRetryMaxMs: number;

  /** The libvirt driver: the URI of a host that names none, the network and pool every VM uses, and where a missing pool is made. */
  libvirtDefaultUri: string;
  libvirtNetwork: string;
  libvirtPool: string;
  libvirtPoolPath: string | null;
  /** LIBVIRT_DOMAIN_TYPE: auto (kvm when the host offers it), kvm, or qemu (software emulation). */
  libvirtDomainType: 'auto' | 'kvm' | 'qemu';
  /** The image a create that names none gets (DEFAULT_IMAGE); null: no image, which only the simulator can boot. */
  defaultImage: string | null;
  /** How long a stop waits for the guest to shut down before forcing it off. */
  stopTimeoutSeconds: number;

  workerConcurrency: number;
  operationLeaseMs: number;
  operationPollMs: number;
  defaultWaitSeconds: number;
  maxWaitSeconds: number;
  /** The longest a create or unshelve may wait in the capacity queue. */
  maxCapacityWaitSeconds: number;
  reconcileIntervalMs: number;
  idempotencyTtlHours: number;

  /** An admin ensured at start, so a production install has a first user. */
  bootstrapAdmin: { username: string; password: string } | null;

  placementPolicy: string | null;
  quotaDefaults: { vcpus: number; memoryMib: number; gpus: number; vms: number };

  /** Values generated for demo mode, reported in the start-up log line. */
  demoNotes: string[];
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

export const DEMO_SDK_API_KEY = 'demo-sdk-api-key';

/** Parses and validates the environment; throws ConfigError naming every problem. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const problems: string[] = [];
  const read = new EnvReader(env, problems);
  const config = new AppConfig();

  config.demo = read.flag('VMPLANE_DEMO');
  config.demoNotes = [];
  config.port = read.int('PORT', 8000, 0, 65535);
  config.host = read.str('HOST', '127.0.0.1');
  // Demo mode keeps its own files, so a demo started in the same folder as a real installation shares nothing with it.
  config.database = parseDatabaseUrl(read.str('DATABASE_URL', config.demo ? 'sqlite:./data/demo.sqlite' : 'sqlite:./data/vmplane.sqlite'), problems);
  config.fleetFile = env.FLEET_FILE ? resolve(env.FLEET_FILE) : null;
  config.metricsToken = env.METRICS_TOKEN || null;
  if (config.metricsToken !== null && config.metricsToken.length < 16) problems.push('METRICS_TOKEN must be at least 16 characters long');
  config.logLevel = read.oneOf('LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

  const jwtSecret = env.JWT_SECRET;
  if (jwtSecret) {
    if (jwtSecret.length < 32) problems.push('JWT_SECRET must be at least 32 characters long');
    config.jwtSecret = jwtSecret;
  } else if (config.demo) {
    config.jwtSecret = randomBytes(32).toString('base64url');
    config.demoNotes.push('JWT_SECRET generated for this process (tokens end with it)');
  } else {
    problems.push('JWT_SECRET is required (the token signing key; at least 32 characters)');
  }
  config.jwtIssuer = read.str('JWT_ISSUER', 'vmplane');
  config.jwtAudience = read.str('JWT_AUDIENCE', 'vmplane-api');
  config.jwtTtlSeconds = read.int('JWT_TTL_SECONDS', 3600, 60, 86400);
  config.loginMaxFailures = read.int('LOGIN_MAX_FAILURES', 5, 1, 1000);
  config.loginLockoutSeconds = read.int('LOGIN_LOCKOUT_SECONDS', 300, 1, 86400);
  config.tokenRequestsPerMinute = read.int('TOKEN_REQUESTS_PER_MINUTE', 30, 1, 1_000_000);
  config.trustProxy = env.TRUST_PROXY || null;

  config.hypervisorDriver = read.oneOf('HYPERVISOR_DRIVER', 'simulator', ['simulator', 'libvirt']) as HypervisorDriver;
  const sdkApiKey = env.SDK_API_KEY;
  if (sdkApiKey) {
    config.sdkApiKey = sdkApiKey;
  } else if (config.hypervisorDriver === 'libvirt') {
    // libvirt authenticates the connection itself (SSH keys, TLS certificates); there is no API key.
    config.sdkApiKey = '';
  } else if (config.demo) {
    config.sdkApiKey = DEMO_SDK_API_KEY;
    config.demoNotes.push('the simulated hypervisor uses a demo SDK_API_KEY');
  } else {
    problems.push('SDK_API_KEY is required (the hypervisor API key)');
  }
  config.sdkFailureRate = read.num('SDK_FAILURE_RATE', 0.01, 0, 1);
  config.sdkLatencyMs = read.int('SDK_LATENCY_MS', 0, 0, 600_000);
  const statePath = read.str('SDK_STATE_PATH', config.demo ? './data/demo-hypervisor.sqlite' : './data/hypervisor.sqlite');
  config.sdkStatePath = statePath === ':memory:' ? statePath : resolve(statePath);
  config.sdkSeed = env.SDK_SEED || null;

  config.hypervisorMaxAttempts = read.int('HYPERVISOR_MAX_ATTEMPTS', 4, 1, 20);
  config.hypervisorRetryBaseMs = read.int('HYPERVISOR_RETRY_BASE_MS', 100, 0, 60_000);
  config.hypervisorRetryMaxMs = read.int('HYPERVISOR_RETRY_MAX_MS', 2000, 0, 600_000);

  config.libvirtDefaultUri = read.matching('LIBVIRT_DEFAULT_URI', 'qemu:///system', LIBVIRT_URI, 'a libvirt URI such as qemu:///system or qemu+ssh://user@host/system');
  config.libvirtNetwork = read.matching('LIBVIRT_NETWORK', 'default', LIBVIRT_NAME, '1-64 letters, digits, ".", "_" or "-"');
  config.libvirtPool = read.matching('LIBVIRT_POOL', 'vmplane', LIBVIRT_NAME, '1-64 letters, digits, ".", "_" or "-"');
  const poolPath = env.LIBVIRT_POOL_PATH || null;
  if (poolPath !== null && !/^\/[^\0\n]*$/.test(poolPath)) problems.push('LIBVIRT_POOL_PATH must be an absolute path');
  config.libvirtPoolPath = poolPath;
  config.libvirtDomainType = read.oneOf('LIBVIRT_DOMAIN_TYPE', 'auto', ['auto', 'kvm', 'qemu']) as AppConfig['libvirtDomainType'];
  const defaultImage = env.DEFAULT_IMAGE || null;
  if (defaultImage !== null && !LIBVIRT_NAME.test(defaultImage)) problems.push('DEFAULT_IMAGE must be an image name: 1-64 letters, digits, ".", "_" or "-"');
  config.defaultImage = defaultImage;
  config.stopTimeoutSeconds = read.int('STOP_TIMEOUT_SECONDS', 60, 1, 3600);

  config.workerConcurrency = read.int('WORKER_CONCURRENCY', 32, 1, 10_000);
  config.operationLeaseMs = read.int('OPERATION_LEASE_MS', 30_000, 1000, 3_600_000);
  config.operationPollMs = read.int('OPERATION_POLL_MS', 500, 10, 60_000);
  config.defaultWaitSeconds = read.int('DEFAULT_WAIT_SECONDS', 30, 0, 3600);
  config.maxWaitSeconds = read.int('MAX_WAIT_SECONDS', 120, 0, 3600);
  config.maxCapacityWaitSeconds = read.int('MAX_CAPACITY_WAIT_SECONDS', 3600, 1, 86_400);
  config.reconcileIntervalMs = read.int('RECONCILE_INTERVAL_MS', 60_000, 0, 86_400_000);
  config.idempotencyTtlHours = read.int('IDEMPOTENCY_TTL_HOURS', 24, 24, 24 * 30);

  const adminUsername = env.ADMIN_USERNAME;
  const adminPassword = env.ADMIN_PASSWORD;
  config.bootstrapAdmin = null;
  if (adminUsername || adminPassword) {
    if (!adminUsername || !adminPassword) problems.push('ADMIN_USERNAME and ADMIN_PASSWORD must be set together');
    else if (adminPassword.length < 12) problems.push('ADMIN_PASSWORD must be at least 12 characters long');
    else config.bootstrapAdmin = { username: adminUsername, password: adminPassword };
  }

  config.placementPolicy = env.PLACEMENT_POLICY || null;
  config.quotaDefaults = {
    vcpus: read.int('QUOTA_VCPUS', 512, 0, 10_000_000),
    memoryMib: read.int('QUOTA_MEMORY_MIB', 4 * 1024 * 1024, 0, 2_000_000_000),
    gpus: read.int('QUOTA_GPUS', 16, 0, 1_000_000),
    vms: read.int('QUOTA_VMS', 100, 0, 10_000_000),
  };

  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

function parseDatabaseUrl(url: string, problems: string[]): DatabaseConfig {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (!path) problems.push('DATABASE_URL sqlite: needs a path, e.g. sqlite:./data/vmplane.sqlite');
    return { kind: 'sqlite', path: path === ':memory:' ? path : resolve(path) };
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    return { kind: 'postgres', url };
  }
  problems.push('DATABASE_URL must start with sqlite:, postgres:// or postgresql://');
  return { kind: 'sqlite', path: ':memory:' };
}

class EnvReader {
  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly problems: string[],
  ) {}

  str(name: string, fallback: string): string {
    const value = this.env[name];
    return value === undefined || value === '' ? fallback : value;
  }

  flag(name: string): boolean {
    const value = (this.env[name] ?? '').toLowerCase();
    return value === '1' || value === 'true' || value === 'yes';
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const value = this.num(name, fallback, min, max);
    if (!Number.isInteger(value)) {
      this.problems.push(`${name} must be an integer`);
    }
    return value;
  }

  num(name: string, fallback: number, min: number, max: number): number {
    const raw = this.env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min || value > max) {
      this.problems.push(`${name} must be a number between ${min} and ${max} (got "${raw}")`);
      return fallback;
    }
    return value;
  }

  matching(name: string, fallback: string, pattern: RegExp, what: string): string {
    const value = this.str(name, fallback);
    if (!pattern.test(value)) this.problems.push(`${name} must be ${what} (got "${value.slice(0, 100)}")`);
    return value;
  }

  oneOf(name: string, fallback: string, allowed: string[]): string {
    const value = this.str(name, fallback);
    if (!allowed.includes(value)) this.problems.push(`${name} must be one of ${allowed.join(', ')}`);
    return value;
  }
}
