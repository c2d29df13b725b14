import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface Child {
  process: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

export async function startChild(script: string, env: NodeJS.ProcessEnv, port: number, logPath: string, nodeArgs: string[] = []): Promise<Child> {
  const { createWriteStream } = await import('node:fs');
  const log = createWriteStream(logPath);
  const child = spawn(process.execPath, [...nodeArgs, script], { env: { ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${script} exited with ${child.exitCode}; see ${logPath}`);
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch {
      /* starting */
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    process: child,
    url,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Samples a process's resident set size (Linux /proc), keeping the peak per phase. */
export class RssSampler {
  private timer: NodeJS.Timeout | null = null;
  peakKb = 0;

  constructor(private readonly pid: number) {}

  current(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  }

  start(): void {
    this.peakKb = this.current();
    this.timer = setInterval(() => {
      try {
        this.peakKb = Math.max(this.peakKb, this.current());
      } catch {
        /* exited */
      }
    }, 100);
  }

  stop(): number {
    if (this.timer) clearInterval(this.timer);
    return this.peakKb;
  }
}

/**
 * CPU time the process has used so far, user and system, in milliseconds
 * (`/proc/PID/stat`, in clock ticks of 10 ms). Unlike throughput, it hardly
 * moves when other tenants of the machine take its cores.
 */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  // After "pid (comm) ": state is field 3, so utime (14) and stime (15) are at 11 and 12.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Replaces the text between `<!-- name:start -->` and `<!-- name:end -->` in a Markdown file, creating it if needed. */
export function writeMarkdownSection(path: string, name: string, body: string): void {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const block = `${start}\n${body.trim()}\n${end}`;
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  const next = from >= 0 && to > from ? `${text.slice(0, from)}${block}${text.slice(to + end.length)}` : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(path, next);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
