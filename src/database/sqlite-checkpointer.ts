import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { AppConfig } from '../config/app-config';

/**
 * How many WAL frames (pages) the writer's own connection lets the log grow to
 * before it checkpoints itself (SQLite's wal_autocheckpoint; its default is 1000).
 * With the checkpointer running, that checkpoint finds nearly every frame copied
 * already and only restarts the log; without it, the writer does all the work.
 */
export const WRITER_AUTOCHECKPOINT_FRAMES = 4000;

/** Commits signalled within this long share one checkpoint pass. */
const GATHER_MS = 20;

/** The signal words the writer and the checkpointer share. */
const COMMITS = 0;
const STOP = 1;

/**
 * The checkpointer thread. It blocks on the shared commit counter (Atomics.wait:
 * no timer, no wakeup while nothing is written), gathers the commits of the next
 * GATHER_MS, then copies what the log holds into the database file with a
 * PASSIVE checkpoint, which never waits for and never blocks the writer or the
 * readers. It has its own connection, so the copying and the fsync that ends it
 * happen on this thread, not on the event loop that serves requests.
 */
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const signal = new Int32Array(workerData.signal);
let db;
try {
  db = new (require(workerData.driver))(workerData.path, { fileMustExist: true });
  db.pragma('busy_timeout = 0');
  let seen = 0;
  for (;;) {
    Atomics.wait(signal, ${COMMITS}, seen);
    if (Atomics.load(signal, ${STOP}) === 1) break;
    Atomics.wait(signal, ${STOP}, 0, ${GATHER_MS});
    if (Atomics.load(signal, ${STOP}) === 1) break;
    seen = Atomics.load(signal, ${COMMITS});
    db.pragma('wal_checkpoint(PASSIVE)');
  }
} catch (error) {
  // SQLite's error class does not cross to the parent thread with its message; a plain Error does.
  throw new Error(error.code ? error.code + ': ' + error.message : String(error.message || error));
} finally {
  if (db) db.close();
}
`;

/**
 * Checkpoints a SQLite database's write-ahead log on a thread of its own.
 *
 * In WAL mode every commit appends the pages it changed to the log, and every
 * so often (SQLite's autocheckpoint) the committing connection copies them
 * into the database file and fsyncs it, inside that COMMIT. vmplane's one
 * writer runs on the event loop, so that copy stopped every request for
 * about 10 ms once every ~1000 pages, about one commit in a hundred under
 * load (docs/benchmarks.md). Here a worker thread does the copying, told of
 * each commit through shared memory; the writer keeps a larger
 * autocheckpoint (WRITER_AUTOCHECKPOINT_FRAMES) only to restart the log,
 * which only it can do while it keeps writing, and as the fallback should
 * the thread fail.
 */
export class SqliteCheckpointer {
  private readonly signal = new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT));
  private worker: Worker | null = null;
  private exited: Promise<void> = Promise.resolve();

  /** `onError` hears why the thread stopped early; the writer's own autocheckpoint goes on as before. */
  constructor(
    private readonly path: string,
    private readonly onError: (error: Error) => void,
  ) {}

  start(): void {
    if (this.worker) return;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { driver: require.resolve('better-sqlite3'), path: this.path, signal: this.signal.buffer },
      // It holds one connection and a loop: a small heap is plenty, and bounds what it can cost.
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
    });
    worker.on('error', (error: unknown) => this.onError(new Error(messageOf(error))));
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    // Never keeps the process alive on its own.
    worker.unref();
    this.worker = worker;
  }

  /** A write transaction committed: the log has frames to copy. Costs an atomic add and a notify. */
  committed(): void {
    if (!this.worker) return;
    Atomics.add(this.signal, COMMITS, 1);
    Atomics.notify(this.signal, COMMITS);
  }

  /** Ends the thread after the pass it may be in; resolves once its connection is closed. */
  async stop(): Promise<void> {
    if (!this.worker) return;
    this.worker = null;
    Atomics.store(this.signal, STOP, 1);
    // Moves the counter too, so a thread about to wait for the next commit does not.
    Atomics.add(this.signal, COMMITS, 1);
    Atomics.notify(this.signal, COMMITS);
    Atomics.notify(this.signal, STOP);
    await this.exited;
  }
}

/** What a thread's error says (it may come from another realm, where `instanceof Error` fails). */
function messageOf(error: unknown): string {
  const message = error !== null && typeof error === 'object' ? (error as { message?: unknown }).message : undefined;
  return typeof message === 'string' ? message : String(error);
}

/** The server's checkpointer: on a SQLite database file, from start to shutdown. */
@Injectable()
export class SqliteCheckpointerService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('SqliteCheckpointer');
  private readonly checkpointer: SqliteCheckpointer | null;

  constructor(config: AppConfig) {
    const db = config.database;
    this.checkpointer =
      db.kind === 'sqlite' && db.path !== ':memory:'
        ? new SqliteCheckpointer(resolve(db.path), (error) =>
            this.logger.warn(`the checkpoint thread stopped (${error.message}); commits checkpoint the log themselves from now on`),
          )
        : null;
  }

  onApplicationBootstrap(): void {
    this.checkpointer?.start();
  }

  committed(): void {
    this.checkpointer?.committed();
  }

  onApplicationShutdown(): Promise<void> {
    return this.checkpointer?.stop() ?? Promise.resolve();
  }
}
