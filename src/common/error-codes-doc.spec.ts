/**
 * The error codes the documents name against the ones the server has: docs/api.md's
 * errors table lists every code with the status problem-details.ts maps it to, every
 * code thrown in src/ has a status there, and a "409 some_code" anywhere in the
 * documents is a real code with that status.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { projectRoot } from './project-root';
import { statusForCode } from './problem-details';

const ROOT = projectRoot(__dirname);
const CODE = /^[a-z]+(_[a-z]+)*$/;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts') ? [path] : [];
  });
}

/** The keys of STATUS_BY_CODE, the one table of codes and statuses. */
function mappedCodes(source: string): Map<string, number> {
  const table = /const STATUS_BY_CODE[^=]*=\s*\{([\s\S]*?)\n\};/.exec(source);
  if (!table) throw new Error('STATUS_BY_CODE not found in problem-details.ts');
  return new Map([...table[1].matchAll(/^\s*(\w+): (\d{3}),$/gm)].map(([, code, status]) => [code, Number(status)]));
}

/** Codes problem-details.ts gives errors that carry none: faults and the framework's own errors. */
function fallbackCodes(source: string): Set<string> {
  const bodies = [/function codeForHttpStatus[\s\S]*?\n\}/, /function frameworkCode[\s\S]*?\n\}/, /\bcode = '(\w+)';/].map((re) => re.exec(source)?.[0] ?? '');
  if (bodies.some((body) => body === '')) throw new Error('the fallback codes of problem-details.ts moved');
  return new Set(bodies.flatMap((body) => [...body.matchAll(/'([a-z_]+)'/g)].map((m) => m[1])).filter((code) => CODE.test(code)));
}

/** Codes given to errors where they are thrown: `readonly code = '…'`, `new ConflictError('…'`, `super('…'` of a ConflictError. */
function thrownCodes(): Map<string, string> {
  const codes = new Map<string, string>();
  for (const file of sourceFiles(join(ROOT, 'src'))) {
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(/readonly code = '(\w+)'|new (?:ConflictError|UnprocessableError)\(\s*'(\w+)'|\bsuper\(\s*'(\w+)',/g)) {
      codes.set(match[1] ?? match[2] ?? match[3], relative(ROOT, file));
    }
  }
  return codes;
}

/** docs/api.md's errors table: each code (the first backticked word of each comma-separated item) with its row's status. */
function documentedCodes(apiMd: string): Map<string, string> {
  const start = apiMd.search(/^## Errors$/m);
  const end = apiMd.indexOf('\n## ', start);
  const codes = new Map<string, string>();
  for (const line of apiMd.slice(start, end).split('\n')) {
    const cells = /^\| ([^|]+) \| (.+) \| [^|]* \|$/.exec(line);
    if (!cells || !/\d|4xx/.test(cells[1])) continue;
    for (const item of topLevelItems(cells[2])) {
      const code = /^`([a-z_]+)`/.exec(item.trim());
      if (code) codes.set(code[1], cells[1].trim());
    }
  }
  return codes;
}

/** Splits at commas outside parentheses. */
function topLevelItems(cell: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of cell) {
    if (char === '(') depth++;
    if (char === ')') depth--;
    if (char === ',' && depth === 0) {
      items.push(current);
      current = '';
    } else current += char;
  }
  return [...items, current];
}

describe('error codes in the documents', () => {
  const source = readFileSync(join(__dirname, 'problem-details.ts'), 'utf8');
  const mapped = mappedCodes(source);
  const fallbacks = fallbackCodes(source);
  const thrown = thrownCodes();
  const known = new Set([...mapped.keys(), ...fallbacks, ...thrown.keys()]);
  const apiMd = readFileSync(join(ROOT, 'docs', 'api.md'), 'utf8');

  it('reads the codes out of the source (the extraction itself works)', () => {
    expect(mapped.get('invalid_state')).toBe(409);
    expect(mapped.size).toBeGreaterThan(30);
    expect([...fallbacks].sort()).toEqual(expect.arrayContaining(['internal_error', 'validation_failed', 'not_found']));
    expect(thrown.get('resize_does_not_fit')).toBe('src/vms/vm-actions.service.ts');
    expect(documentedCodes('## Errors\n\n| status | codes | retry? |\n| --- | --- | --- |\n| 409 | `a_b` (x, `y`), `c` | — |\n\n## Next\n| 400 | `d` | — |')).toEqual(
      new Map([
        ['a_b', '409'],
        ['c', '409'],
      ]),
    );
  });

  it('every code thrown in src/ has its status in problem-details.ts (else it would be a 500)', () => {
    expect([...thrown].filter(([code]) => !mapped.has(code)).map(([code, file]) => `${code} (${file})`)).toEqual([]);
  });

  it("docs/api.md's errors table lists every code, each in the row of its status, and no other", () => {
    const documented = documentedCodes(apiMd);
    expect([...known].filter((code) => !documented.has(code)).sort()).toEqual([]);
    expect([...documented.keys()].filter((code) => !known.has(code)).sort()).toEqual([]);
    const misplaced = [...documented].filter(([code, status]) => {
      if (mapped.has(code)) return String(statusForCode(code)) !== status;
      if (code === 'internal_error') return status !== '500';
      return false;
    });
    expect(misplaced).toEqual([]);
  });

  it('a status followed by a code anywhere in README.md and docs/ ("409 invalid_state") names a real code with that status', () => {
    const documents = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
    const wrong: string[] = [];
    for (const document of documents) {
      const text = readFileSync(join(ROOT, document), 'utf8');
      for (const match of text.matchAll(/\b([45]\d\d)`? `?([a-z]+(?:_[a-z]+)*)\b/g)) {
        const [, status, code] = match;
        // Plain words after a status ("a 400 naming the field") are prose; codes have an underscore or are known.
        if (!code.includes('_') && !known.has(code)) continue;
        const line = text.slice(0, match.index).split('\n').length;
        if (!known.has(code)) wrong.push(`${document}:${line}: ${status} ${code} is not a code the server has`);
        else if (mapped.has(code) && String(statusForCode(code)) !== status) wrong.push(`${document}:${line}: ${code} is ${statusForCode(code)}, not ${status}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("docs/cli.md's exit-code table names only the API's real codes", () => {
    const cliMd = readFileSync(join(ROOT, 'docs', 'cli.md'), 'utf8');
    const rows = cliMd.split('\n').filter((line) => /^\| [15] \| /.test(line));
    expect(rows).toHaveLength(2);
    const named = rows.flatMap((row) => [...row.matchAll(/`([a-z]+(?:_[a-z]+)+)`/g)].map((m) => m[1]));
    expect(named.length).toBeGreaterThan(3);
    expect(named.filter((code) => !known.has(code))).toEqual([]);
  });
});
