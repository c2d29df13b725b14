/**
 * A document's ```sh examples run as a reader runs them: in order, in one bash
 * session from the repository root. Shared by the tests of docs/api.md and README.md.
 */
import { spawn } from 'node:child_process';
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
