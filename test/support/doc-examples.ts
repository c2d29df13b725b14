/**
 * A document's ```sh examples run as a reader runs them: in order, in one bash
 * session from the repository root. Shared by the tests of docs/api.md, README.md and docs/cli.md.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { ROOT } from './server-process';

export interface ShellExample {
  /** 1-based line of the ```sh fence in the document. */
  line: number;
  script: string;
  /** The fenced block right after it, if it is not another command. */
  expected: string | null;
}

export function shellExamples(markdown: string): ShellExample[] {
  const fences = [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)];
  const result: ShellExample[] = [];
  fences.forEach((fence, i) => {
    if (fence[1] !== 'sh') return;
    const next = fences[i + 1];
    result.push({
      line: markdown.slice(0, fence.index).split('\n').length,
      script: fence[2],
      expected: next && next[1] !== 'sh' ? next[2] : null,
    });
  });
  return result;
}

export interface ExamplesRun {
  code: number | null;
  /** stdout and stderr of the whole session, interleaved. */
  output: string;
  /** What each example printed; null for an example the session did not finish. */
  outputs: (string | null)[];
}

/**
 * Runs the examples in one `bash -c` session (after `preamble`, e.g. `set -u`) and splits
 * the output at markers echoed between them.
 */
export async function runExamples(examples: readonly ShellExample[], env: NodeJS.ProcessEnv, preamble: readonly string[] = []): Promise<ExamplesRun> {
  const marker = (i: number) => `@@@example ${i}@@@`;
  const script = [
    ...preamble,
    ...examples.flatMap((example, i) => [`echo '${marker(i)}'`, example.script]),
    `echo '${marker(examples.length)}'`,
  ].join('\n');
  const { code, output } = await runBash(script, env);
  const outputs = examples.map((_, i) => {
    const start = output.indexOf(marker(i));
    const end = output.indexOf(marker(i + 1));
    return start < 0 || end < 0 ? null : output.slice(start + marker(i).length, end);
  });
  return { code, output, outputs };
}

/** Signs that an example went wrong even though bash carried on. */
const BAD_OUTPUT = [/command not found/, /\bundefined\b/, /Error: /, /curl: \(\d+\)/];

export function badOutput(output: string): RegExp[] {
  return BAD_OUTPUT.filter((bad) => bad.test(output));
}

function runBash(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', script], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('close', (code) => resolve({ code, output }));
  });
}

/**
 * The lines of a documented output that the real output must also have, as whole lines and in
 * order: HTTP status lines (status code only), lines of status codes (`-w '%{http_code}'`),
 * numbers, and lines of lowercase words (`succeeded`, `shelved shut_off`, `stop:succeeded …`).
 * JSON, ids and times are left out: they differ on every run.
 */
export function checkedLines(expected: string): string[] {
  return expected
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => /^HTTP\/1\.1 \d{3}\b/.test(line) || /^\d+( \d+)*$/.test(line) || /^[a-z_]+(:[a-z_]+)?( [a-z_]+(:[a-z_]+)?)*$/.test(line))
    .map((line) => (line.startsWith('HTTP/1.1') ? line.slice(0, 12) : line));
}

/**
 * What differs between what each example printed and the output documented under it
 * (see checkedLines), plus any sign of an error; empty when the document is right.
 */
export function outputProblems(document: string, examples: readonly ShellExample[], outputs: readonly (string | null)[]): string[] {
  const problems: string[] = [];
  examples.forEach((example, i) => {
    const actual = outputs[i];
    const where = `${document}:${example.line}`;
    if (actual === null) {
      problems.push(`${where}: did not run to the end`);
      return;
    }
    for (const bad of badOutput(actual)) problems.push(`${where}: output has ${bad}:\n${actual.slice(0, 500)}`);
    const lines = actual.split('\n').map((line) => line.trim());
    let from = 0;
    for (const wanted of checkedLines(example.expected ?? '')) {
      const at = lines.findIndex((line, j) => j >= from && (wanted.startsWith('HTTP/1.1') ? line.startsWith(wanted) : line === wanted));
      if (at < 0) problems.push(`${where}: expected the line "${wanted}" in:\n${actual.slice(0, 1500)}`);
      else from = at + 1;
    }
  });
  return problems;
}

/** docs/api.md's examples after "Before you start" (whose `npm start` the test server replaces), pointed at `url`. */
export function apiTourSteps(url: string): ShellExample[] {
  const tour = shellExamples(readFileSync(join(ROOT, 'docs', 'api.md'), 'utf8'));
  if (!tour[0].script.includes('npm start')) throw new Error('docs/api.md no longer starts with its npm start block');
  const steps = tour.slice(1);
  if (!steps[0].script.includes('API=http://127.0.0.1:8000')) throw new Error('docs/api.md no longer sets API=http://127.0.0.1:8000 first');
  steps[0] = { ...steps[0], script: steps[0].script.replace('API=http://127.0.0.1:8000', `API=${url}`) };
  return steps;
}

/**
 * Type-checks `code` as if it were the file `path` of the repository, with the project's
 * tsconfig.json; returns the compiler's messages (none when it compiles).
 */
export function typeCheck(code: string, path: string): string[] {
  const config = ts.readConfigFile(join(ROOT, 'tsconfig.json'), ts.sys.readFile);
  const options = { ...ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT).options, noEmit: true, incremental: false };
  const file = join(ROOT, path);
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const readFile = host.readFile.bind(host);
  host.getSourceFile = (name, language, ...rest) => (name === file ? ts.createSourceFile(name, code, language) : getSourceFile(name, language, ...rest));
  host.fileExists = (name) => name === file || fileExists(name);
  host.readFile = (name) => (name === file ? code : readFile(name));
  const diagnostics = ts.getPreEmitDiagnostics(ts.createProgram([file], options, host));
  return diagnostics.map((d) => ts.formatDiagnostic(d, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => ROOT, getNewLine: () => '\n' }).trim());
}
