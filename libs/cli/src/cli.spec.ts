import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VmplaneApiError, type ProblemDetailsDto } from '../../client/src';
import { configPath, loginKey, parseApiUrl, readConfig, removeCredentials, resolveToken, saveCredentials, writeConfig, type ConfigFile } from './config';
import { CliError, EXIT, describeError } from './errors';
import { consoleLines, escapeControl, escapeControlKeepLines, hostGpus, safeJson, table } from './format';

const API = 'http://127.0.0.1:8000';

function apiError(status: number, problem: Partial<ProblemDetailsDto>): VmplaneApiError {
  const body = { type: 'about:blank', title: 't', status, instance: '/x', ...problem } as ProblemDetailsDto;
  return new VmplaneApiError(status, body, new Response(null, { status }));
}

describe('CLI errors', () => {
  it('names the problem code and detail on one line, with the exit code for its kind', () => {
    expect(describeError(apiError(404, { code: 'not_found', detail: 'vm x not found' }), API)).toEqual({
      message: 'not_found: vm x not found',
      exitCode: EXIT.notFound,
    });
    expect(describeError(apiError(401, { code: 'unauthenticated', detail: 'The access token expired' }), API)).toEqual({
      message: 'unauthenticated: The access token expired (run: vmplane login)',
      exitCode: EXIT.auth,
    });
    expect(describeError(apiError(403, { code: 'quota_exceeded', detail: 'GPU quota' }), API).exitCode).toBe(EXIT.capacity);
    expect(describeError(apiError(409, { code: 'public_ip_in_use', detail: 'in use' }), API).exitCode).toBe(EXIT.failure);
  });

  it('lists the alternatives of insufficient_capacity and field errors the detail lacks', () => {
    const capacity = apiError(503, {
      code: 'insufficient_capacity',
      detail: 'No host can take 8× h100-80gb\nright now',
      alternatives: [
        { gpu_model: 'a100-80gb', gpu_count: 8, region: 'us-east-1' },
        { gpu_model: null, gpu_count: 2, region: 'us-west-2' },
      ],
    });
    expect(describeError(capacity, API)).toEqual({
      message: 'insufficient_capacity: No host can take 8× h100-80gb right now (alternatives: 8×a100-80gb in us-east-1, 2×any GPU in us-west-2)',
      exitCode: EXIT.capacity,
    });
    const invalid = apiError(400, { code: 'validation_failed', detail: 'Invalid request', errors: [{ field: 'cpu_cores', message: 'too many' }] });
    expect(describeError(invalid, API).message).toBe('validation_failed: Invalid request (cpu_cores: too many)');
  });

  it('explains an unreachable API', () => {
    const refused = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    expect(describeError(refused, API)).toEqual({
      message: `cannot reach the API at ${API}: ECONNREFUSED (is the server running? set --api or VMPLANE_API)`,
      exitCode: EXIT.failure,
    });
  });
});

describe('CLI config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmplane-cli-config-'));

  it('lives in VMPLANE_CONFIG, else XDG_CONFIG_HOME, else ~/.config', () => {
    expect(configPath({ VMPLANE_CONFIG: '/a/b.json', XDG_CONFIG_HOME: '/x' })).toBe('/a/b.json');
    expect(configPath({ XDG_CONFIG_HOME: '/x' })).toBe('/x/vmplane/config.json');
    expect(configPath({ XDG_CONFIG_HOME: 'relative' })).toMatch(/\.config\/vmplane\/config\.json$/);
  });

  it('is written with mode 0600 in a 0700 folder, whatever the umask', () => {
    const path = join(dir, 'new', 'config.json');
    const umask = process.umask(0o000);
    try {
      writeConfig(path, { version: 1, credentials: { [API]: { username: 'u', token: 't', expires_at: '2999-01-01T00:00:00.000Z' } } });
    } finally {
      process.umask(umask);
    }
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'new')).mode & 0o777).toBe(0o700);
    expect(readConfig(path).credentials[API].token).toBe('t');
  });

  it('prefers VMPLANE_TOKEN, refuses expired or missing tokens with exit 3', () => {
    const path = join(dir, 'tokens.json');
    writeConfig(path, {
      version: 1,
      credentials: {
        [API]: { username: 'u', token: 'saved', expires_at: '2999-01-01T00:00:00.000Z' },
        'http://old': { username: 'u', token: 'old', expires_at: '2000-01-01T00:00:00.000Z' },
      },
    });
    expect(resolveToken(`${API}/`, {}, path)).toBe('saved');
    expect(resolveToken(API, { VMPLANE_TOKEN: 'env' }, path)).toBe('env');
    expect(() => resolveToken('http://old', {}, path)).toThrow(expect.objectContaining({ exitCode: EXIT.auth, message: expect.stringMatching(/^token_expired/) }));
    expect(() => resolveToken('http://other', {}, path)).toThrow(expect.objectContaining({ exitCode: EXIT.auth, message: expect.stringMatching(/^not_logged_in/) }));
    writeFileSync(path, 'nope');
    expect(() => readConfig(path)).toThrow(CliError);
  });
});

describe('CLI API URL', () => {
  it('takes http and https URLs, normalised: lower-case host, no default port, no trailing slash', () => {
    expect(parseApiUrl('http://127.0.0.1:8000')).toBe('http://127.0.0.1:8000');
    expect(parseApiUrl(' HTTP://LocalHost:8000// ')).toBe('http://localhost:8000');
    expect(parseApiUrl('https://api.example.com:443/vmplane/')).toBe('https://api.example.com/vmplane');
    expect(parseApiUrl('http://[::1]:80/')).toBe('http://[::1]');
  });

  it('refuses what is not an API root URL, saying what it expects', () => {
    expect(() => parseApiUrl('notaurl')).toThrow('Expected an http:// or https:// URL; did you mean http://notaurl?');
    expect(() => parseApiUrl('127.0.0.1:8000')).toThrow('did you mean http://127.0.0.1:8000?');
    expect(() => parseApiUrl('not a url')).toThrow('Expected an http:// or https:// URL such as http://127.0.0.1:8000.');
    expect(() => parseApiUrl('ftp://example.com')).toThrow('Expected an http:// or https:// URL such as http://127.0.0.1:8000.');
    expect(() => parseApiUrl('http://')).toThrow('Expected an http:// or https:// URL such as http://127.0.0.1:8000.');
    expect(() => parseApiUrl('http://me:secret@example.com')).toThrow(/no user name or password/);
    expect(() => parseApiUrl('http://example.com/?x=1')).toThrow(/without a query/);
  });

  it('saves one login for localhost and 127.0.0.1, with or without a trailing slash or the default port', () => {
    const key = loginKey('http://127.0.0.1:8000');
    for (const same of ['http://localhost:8000', 'http://localhost:8000/', 'http://127.0.0.1:8000//']) expect(loginKey(same)).toBe(key);
    expect(loginKey('http://127.0.0.1')).toBe(loginKey('http://localhost:80/'));
    expect(loginKey('http://localhost.example.com:8000')).toBe('http://localhost.example.com:8000');
    expect(loginKey('http://127.0.0.1:8001')).not.toBe(key);

    // A file written before keys were normalised: its login is found, and replaced rather than duplicated.
    const config: ConfigFile = { version: 1, credentials: { 'http://localhost:8000/': { username: 'old', token: 'o', expires_at: '2999-01-01T00:00:00.000Z' } } };
    saveCredentials(config, 'http://127.0.0.1:8000', { username: 'new', token: 'n', expires_at: '2999-01-01T00:00:00.000Z' });
    expect(Object.keys(config.credentials)).toEqual(['http://127.0.0.1:8000']);
    expect(removeCredentials(config, 'http://localhost:8000')).toBe(true);
    expect(config.credentials).toEqual({});
    expect(removeCredentials(config, 'http://localhost:8000')).toBe(false);
  });
});

describe('CLI output on a terminal', () => {
  const hostile = '\u001b]0;pwned\u0007\u001b[2J\u001b[31mRED\u009b2J\u007f\r\n';

  it('shows C0, DEL and C1 control characters as \\xHH', () => {
    expect(escapeControl(hostile)).toBe('\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mRED\\x9b2J\\x7f\\x0d\\x0a');
    expect(escapeControlKeepLines(`a\tb\n${hostile}`)).toBe('a\\x09b\n\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mRED\\x9b2J\\x7f\\x0d\n');
    expect(escapeControl('h100-80gb 1×GPU é')).toBe('h100-80gb 1×GPU é');
  });

  it("prints a serial console's CR LF line ends as line breaks, and still shows a lone CR and escapes", () => {
    const serial = 'Booting\r\nvmplane-guest ready\r\n50%\r100%\u001b[2J';
    expect(escapeControlKeepLines(consoleLines(serial))).toBe('Booting\nvmplane-guest ready\n50%\\x0d100%\\x1b[2J\n');
    expect(consoleLines('')).toBe('');
  });

  it('escapes every control character in JSON, which still parses to the same values', () => {
    const value = { labels: [hostile], name: 'ok' };
    const text = safeJson(value);
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    expect(text).toContain('\\u001b]0;pwned\\u0007');
    expect(text).toContain('\\u009b2J\\u007f');
    expect(JSON.parse(text)).toEqual(value);
  });

  it('escapes table cells, so a value cannot add rows or colours', () => {
    const text = table([{ label: `x\nfake  row${hostile}` }], [{ header: 'LABEL', value: (r) => r.label }]);
    expect(text.split('\n')).toHaveLength(3);
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
  });
});

describe('CLI tables', () => {
  it('pads columns, right-aligns numbers and shows - for empty cells', () => {
    const rows = [
      { name: 'a', n: 8, note: null },
      { name: 'longer', n: 10, note: 'x' },
    ];
    const text = table(rows, [
      { header: 'NAME', value: (r) => r.name },
      { header: 'N', value: (r) => r.n, align: 'right' },
      { header: 'NOTE', value: (r) => r.note },
    ]);
    expect(text).toBe('NAME     N  NOTE\na        8  -\nlonger  10  x\n');
  });
});

describe('CLI host formatting', () => {
  const gpu = (model: string, vmId: string | null) => ({ model, vm_id: vmId }) as never;

  it('sums a host\'s GPUs per model in device order, naming how many are free when some are bound', () => {
    expect(hostGpus({ gpus: [] })).toBe('-');
    expect(hostGpus({ gpus: [gpu('h100-80gb', null), gpu('h100-80gb', null)] })).toBe('2×h100-80gb');
    expect(hostGpus({ gpus: [gpu('a100-80gb', 'vm-1'), gpu('a100-80gb', null), gpu('l4-24gb', null)] })).toBe('2×a100-80gb (1 free) 1×l4-24gb');
  });
});
