/**
 * README.md's configuration table against what loadConfig reads: every variable the
 * server reads has a row, every row names a variable it reads, and each number's
 * range and each list of allowed values in the code appears in its row.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../common/project-root';
import { ConfigError, loadConfig } from './app-config';

const ENV_NAME = /^[A-Z][A-Z0-9_]*$/;

/** The names loadConfig looks up in the environment it is given, whatever they hold. */
function variablesRead(values: (name: string) => string | undefined = () => undefined): Set<string> {
  const seen = new Set<string>();
  const env = new Proxy({} as NodeJS.ProcessEnv, {
    get(_, name) {
      if (typeof name !== 'string') return undefined;
      if (ENV_NAME.test(name)) seen.add(name);
      return values(name);
    },
  });
  try {
    loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
  }
  return seen;
}

/** The names in `env.NAME`, `env['NAME']` and `read.*('NAME'` in the source, in case a read sits behind a branch. */
function variablesInSource(source: string): Set<string> {
  const names = new Set<string>();
  for (const match of source.matchAll(/\benv\.([A-Z][A-Z0-9_]*)\b|\benv\[['"]([A-Z][A-Z0-9_]*)['"]\]|\bread\.\w+\(\s*['"]([A-Z][A-Z0-9_]*)['"]/g)) {
    names.add(match[1] ?? match[2] ?? match[3]);
  }
  return names;
}

/** README.md's "## Configuration" table: each row's text, by every variable its first cell names. */
function configurationRows(readme: string): Map<string, string> {
  const start = readme.search(/^## Configuration$/m);
  if (start < 0) throw new Error('README.md has no "## Configuration" section');
  const end = readme.indexOf('\n## ', start);
  const rows = new Map<string, string>();
  for (const line of readme.slice(start, end < 0 ? undefined : end).split('\n')) {
    const cells = line.split(' | ');
    if (!line.startsWith('| `') || cells.length < 3) continue;
    for (const [, name] of cells[0].matchAll(/`([A-Z][A-Z0-9_]*)`/g)) rows.set(name, line);
  }
  return rows;
}

describe("README.md's configuration table", () => {
  const root = projectRoot(__dirname);
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const rows = configurationRows(readme);
  const read = new Set([...variablesRead(), ...variablesInSource(readFileSync(join(__dirname, 'app-config.ts'), 'utf8'))]);

  it('finds the variables (the extraction itself works)', () => {
    expect(read).toContain('JWT_TTL_SECONDS');
    expect(read).toContain('HYPERVISOR_DRIVER');
    expect(read.size).toBeGreaterThan(40);
    expect(configurationRows('## Configuration\n\n| variable | default | meaning |\n| --- | --- | --- |\n| `A_B`, `C` | `1` | x |\n\n## Next\n| `D` | 2 | y |')).toEqual(
      new Map([
        ['A_B', '| `A_B`, `C` | `1` | x |'],
        ['C', '| `A_B`, `C` | `1` | x |'],
      ]),
    );
  });

  it('has a row for every variable the server reads, and none for a variable it does not', () => {
    expect([...read].filter((name) => !rows.has(name)).sort()).toEqual([]);
    expect([...rows.keys()].filter((name) => !read.has(name)).sort()).toEqual([]);
  });

  it("states each number's range and each list of allowed values as the code checks them", () => {
    // A value far out of every range makes loadConfig name each number's bounds and each list's values.
    const problems: string[] = [];
    try {
      loadConfig(Object.fromEntries([...read].map((name) => [name, '-1e15'])));
    } catch (error) {
      problems.push(...(error as ConfigError).problems);
    }
    const wrong: string[] = [];
    let ranges = 0;
    for (const problem of problems) {
      const range = /^(\w+) must be a number between (\S+) and (\S+) /.exec(problem);
      const list = /^(\w+) must be one of (.+)$/.exec(problem);
      if (range) {
        ranges++;
        const [, name, min, max] = range;
        const row = (rows.get(name) ?? '').replace(/(\d),(?=\d{3})/g, '$1');
        if (!row.includes(`${min}–${max}`)) wrong.push(`${name}: the row does not say ${min}–${max}: ${row}`);
      } else if (list) {
        const [, name, values] = list;
        for (const value of values.split(', ')) if (!(rows.get(name) ?? '').includes(`\`${value}\``)) wrong.push(`${name}: the row does not name \`${value}\``);
      }
    }
    expect(ranges).toBeGreaterThan(20);
    expect(wrong).toEqual([]);
  });
});
