import { resolve } from 'node:path';
import { ConfigError, DEMO_SDK_API_KEY, loadConfig } from './app-config';

const prod = { JWT_SECRET: 'x'.repeat(32), SDK_API_KEY: 'key' };

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const config = loadConfig(prod);
    expect(config).toMatchObject({
      port: 8000,
      host: '127.0.0.1',
      database: { kind: 'sqlite', path: expect.stringMatching(/data\/vmplane\.sqlite$/) },
      sdkFailureRate: 0.01,
      sdkLatencyMs: 0,
      sdkStatePath: expect.stringMatching(/data\/hypervisor\.sqlite$/),
      demo: false,
      jwtTtlSeconds: 3600,
      tokenRequestsPerMinute: 30,
      trustProxy: null,
      metricsToken: null,
    });
  });

  it('reads the edge settings and refuses a short METRICS_TOKEN', () => {
    expect(loadConfig({ ...prod, TOKEN_REQUESTS_PER_MINUTE: '5', TRUST_PROXY: '10.0.0.0/8', METRICS_TOKEN: 'm'.repeat(16) })).toMatchObject({
      tokenRequestsPerMinute: 5,
      trustProxy: '10.0.0.0/8',
      metricsToken: 'm'.repeat(16),
    });
    expect(() => loadConfig({ ...prod, METRICS_TOKEN: 'short' })).toThrow('METRICS_TOKEN must be at least 16 characters long');
    expect(() => loadConfig({ ...prod, TOKEN_REQUESTS_PER_MINUTE: '0' })).toThrow('TOKEN_REQUESTS_PER_MINUTE must be a number between 1 and 1000000');
  });

  it('names every missing secret outside demo mode', () => {
    expect(() => loadConfig({})).toThrow(ConfigError);
    try {
      loadConfig({});
    } catch (error) {
      expect((error as ConfigError).problems).toEqual([
        'JWT_SECRET is required (the token signing key; at least 32 characters)',
        'SDK_API_KEY is required (the hypervisor API key)',
      ]);
    }
  });

  it('in demo mode generates a per-process JWT secret and uses the demo SDK key, and says so', () => {
    const a = loadConfig({ VMPLANE_DEMO: '1' });
    const b = loadConfig({ VMPLANE_DEMO: '1' });
    expect(a.jwtSecret).not.toBe(b.jwtSecret);
    expect(a.jwtSecret.length).toBeGreaterThanOrEqual(32);
    expect(a.sdkApiKey).toBe(DEMO_SDK_API_KEY);
    expect(a.demoNotes).toHaveLength(2);
    expect(loadConfig({ VMPLANE_DEMO: '1', ...prod }).demoNotes).toEqual([]);
  });

  it('keeps demo mode in its own database and hypervisor state, apart from a real installation in the same folder', () => {
    const demo = loadConfig({ VMPLANE_DEMO: '1' });
    const real = loadConfig(prod);
    expect(demo.database).toEqual({ kind: 'sqlite', path: resolve('data/demo.sqlite') });
    expect(real.database).toEqual({ kind: 'sqlite', path: resolve('data/vmplane.sqlite') });
    expect(demo.sdkStatePath).toBe(resolve('data/demo-hypervisor.sqlite'));
    expect(real.sdkStatePath).toBe(resolve('data/hypervisor.sqlite'));
  });

  it('switches to PostgreSQL on a postgres:// URL and refuses other schemes', () => {
    expect(loadConfig({ ...prod, DATABASE_URL: 'postgres://u@h/db' }).database).toEqual({ kind: 'postgres', url: 'postgres://u@h/db' });
    expect(loadConfig({ ...prod, DATABASE_URL: 'postgresql://u@h/db' }).database).toEqual({ kind: 'postgres', url: 'postgresql://u@h/db' });
    expect(() => loadConfig({ ...prod, DATABASE_URL: 'mysql://x' })).toThrow(/DATABASE_URL must start with sqlite:, postgres:\/\/ or postgresql:\/\//);
  });

  it('validates numbers and ranges, naming the variable', () => {
    expect(() => loadConfig({ ...prod, SDK_FAILURE_RATE: '1.5' })).toThrow(/SDK_FAILURE_RATE must be a number between 0 and 1/);
    expect(() => loadConfig({ ...prod, WORKER_CONCURRENCY: '0' })).toThrow(/WORKER_CONCURRENCY/);
    expect(() => loadConfig({ ...prod, PORT: '80.5' })).toThrow(/PORT must be an integer/);
    expect(loadConfig({ ...prod, SDK_LATENCY_MS: '500', WORKER_CONCURRENCY: '100' })).toMatchObject({ sdkLatencyMs: 500, workerConcurrency: 100 });
  });

  it('needs ADMIN_USERNAME and ADMIN_PASSWORD together, with a long password', () => {
    expect(() => loadConfig({ ...prod, ADMIN_USERNAME: 'root' })).toThrow(/set together/);
    expect(() => loadConfig({ ...prod, ADMIN_USERNAME: 'root', ADMIN_PASSWORD: 'short' })).toThrow(/at least 12/);
    expect(loadConfig({ ...prod, ADMIN_USERNAME: 'root', ADMIN_PASSWORD: 'long-enough-pw' }).bootstrapAdmin).toEqual({ username: 'root', password: 'long-enough-pw' });
  });

  it('builds the simulator unless HYPERVISOR_DRIVER says libvirt, which needs no SDK_API_KEY', () => {
    expect(loadConfig(prod)).toMatchObject({
      hypervisorDriver: 'simulator',
      libvirtDefaultUri: 'qemu:///system',
      libvirtNetwork: 'default',
      libvirtPool: 'vmplane',
      libvirtPoolPath: null,
      stopTimeoutSeconds: 60,
    });
    expect(loadConfig({ JWT_SECRET: prod.JWT_SECRET, HYPERVISOR_DRIVER: 'libvirt' })).toMatchObject({ hypervisorDriver: 'libvirt', sdkApiKey: '' });
    expect(() => loadConfig({ ...prod, HYPERVISOR_DRIVER: 'xen' })).toThrow(/HYPERVISOR_DRIVER must be one of simulator, libvirt/);
  });

  it('validates the libvirt variables, naming each', () => {
    const ok = loadConfig({
      ...prod,
      LIBVIRT_DEFAULT_URI: 'qemu+ssh://ops@gpu-17.example.com:2222/system?keyfile=/etc/vmplane/id_ed25519',
      LIBVIRT_NETWORK: 'gpu-net',
      LIBVIRT_POOL: 'vmplane.nvme',
      LIBVIRT_POOL_PATH: '/srv/vmplane',
      STOP_TIMEOUT_SECONDS: '30',
    });
    expect(ok).toMatchObject({ libvirtNetwork: 'gpu-net', libvirtPool: 'vmplane.nvme', libvirtPoolPath: '/srv/vmplane', stopTimeoutSeconds: 30 });
    expect(loadConfig({ ...prod, LIBVIRT_DEFAULT_URI: 'qemu+tls://[fd00::17]/system' }).libvirtDefaultUri).toBe('qemu+tls://[fd00::17]/system');
    expect(() => loadConfig({ ...prod, LIBVIRT_DEFAULT_URI: 'http://x y/' })).toThrow(/LIBVIRT_DEFAULT_URI must be a libvirt URI/);
    expect(() => loadConfig({ ...prod, LIBVIRT_DEFAULT_URI: '-c qemu:///system' })).toThrow(/LIBVIRT_DEFAULT_URI/);
    expect(() => loadConfig({ ...prod, LIBVIRT_POOL: '../pool' })).toThrow(/LIBVIRT_POOL must be 1-64 letters/);
    expect(() => loadConfig({ ...prod, LIBVIRT_NETWORK: 'a b' })).toThrow(/LIBVIRT_NETWORK/);
    expect(() => loadConfig({ ...prod, LIBVIRT_POOL_PATH: 'relative/dir' })).toThrow(/LIBVIRT_POOL_PATH must be an absolute path/);
    expect(() => loadConfig({ ...prod, STOP_TIMEOUT_SECONDS: '0' })).toThrow(/STOP_TIMEOUT_SECONDS must be a number between 1 and 3600/);
  });

  it('DEFAULT_IMAGE is an image name or unset; LIBVIRT_DOMAIN_TYPE is auto, kvm or qemu', () => {
    expect(loadConfig(prod)).toMatchObject({ defaultImage: null, libvirtDomainType: 'auto' });
    expect(loadConfig({ ...prod, DEFAULT_IMAGE: 'debian-12.qcow2', LIBVIRT_DOMAIN_TYPE: 'qemu' })).toMatchObject({ defaultImage: 'debian-12.qcow2', libvirtDomainType: 'qemu' });
    expect(() => loadConfig({ ...prod, DEFAULT_IMAGE: '../etc/passwd' })).toThrow(/DEFAULT_IMAGE must be an image name/);
    expect(() => loadConfig({ ...prod, LIBVIRT_DOMAIN_TYPE: 'xen' })).toThrow(/LIBVIRT_DOMAIN_TYPE must be one of auto, kvm, qemu/);
  });
});
