/**
 * The SQLite checkpointer thread (src/database/sqlite-checkpointer.ts), on real
 * database files: it copies the write-ahead log into the database file when it
 * is told of a commit, and only then; it stops when asked; a thread that cannot
 * start says why. And the unit of work tells it of each commit that wrote.
 */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SqliteCheckpointerService } from '../../src/database/sqlite-checkpointer';
import { SqliteCheckpointer, WRITER_AUTOCHECKPOINT_FRAMES } from '../../src/database/sqlite-checkpointer';
import { UnitOfWork } from '../../src/database/unit-of-work';
import { eventually } from '../support/api';
import { openTestDatabase, sleep } from './support/database';

/** Rows of 4,000 characters: each takes a page of its own, so 100 rows are at least 400 kB in the file. */
const ROW = 4000;

describe('the SQLite checkpointer thread', () => {
  let dir: string;
  let path: string;
  let writer: Database.Database;
  let errors: Error[];
  let checkpointer: SqliteCheckpointer;

  const fileSize = () => statSync(path).size;
  const write = (rows: number) => {
    const insert = writer.prepare('INSERT INTO t (body) VALUES (?)');
    writer.transaction(() => {
      for (let i = 0; i < rows; i++) insert.run(randomBytes(ROW / 2).toString('hex'));
    })();
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vmplane-checkpoint-'));
    path = join(dir, 'db.sqlite');
    writer = new Database(path);
    writer.pragma('journal_mode = WAL');
    // Only the thread copies the log here, so what reaches the file is its work.
    writer.pragma('wal_autocheckpoint = 0');
    writer.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
    errors = [];
    checkpointer = new SqliteCheckpointer(path, (error) => errors.push(error));
  });

  afterEach(async () => {
    await checkpointer.stop();
    writer.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('copies the log into the database file once told of a commit, and not before', async () => {
    checkpointer.start();
    const empty = fileSize();
    write(100);
    await sleep(300);
    expect(fileSize()).toBe(empty);

    checkpointer.committed();
    await eventually(async () => fileSize() >= 100 * ROW, 5000, 20);
    expect(writer.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(writer.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 100 });

    // It goes on with the next commits, as often as it is told of them.
    const before = fileSize();
    write(50);
    checkpointer.committed();
    await eventually(async () => fileSize() >= before + 50 * ROW, 5000, 20);
    expect(errors).toEqual([]);
  });

  it('stops when asked, after closing its connection, and copies nothing more', async () => {
    checkpointer.start();
    await checkpointer.stop();
    const before = fileSize();
    write(100);
    checkpointer.committed();
    await sleep(300);
    expect(fileSize()).toBe(before);
    // Its connection is closed: the writer is the only one left, so it may take the database for itself.
    writer.pragma('locking_mode = EXCLUSIVE');
    write(1);
    expect(errors).toEqual([]);
  });

  it('says why when it cannot start (no such database file), and stopping it still returns', async () => {
    const missing = new SqliteCheckpointer(join(dir, 'missing.sqlite'), (error) => errors.push(error));
    missing.start();
    await eventually(async () => errors.length > 0, 5000, 20);
    expect(errors[0].message).toMatch(/^SQLITE_CANTOPEN: unable to open database file/);
    await missing.stop();
  });

  it("the server's own connection leaves the copying to the thread: it checkpoints only past WRITER_AUTOCHECKPOINT_FRAMES", async () => {
    const db = await openTestDatabase('sqlite');
    try {
      const [setting] = (await db.dataSource.query('PRAGMA wal_autocheckpoint')) as { wal_autocheckpoint: number }[];
      expect(setting.wal_autocheckpoint).toBe(WRITER_AUTOCHECKPOINT_FRAMES);
      expect(WRITER_AUTOCHECKPOINT_FRAMES).toBeGreaterThan(1000);
    } finally {
      await db.close();
    }
  });
});

describe('UnitOfWork and the checkpointer (SQLite)', () => {
  it('tells it of each commit that wrote, once per shared commit, and of none for reads or a unit that failed alone', async () => {
    const db = await openTestDatabase('sqlite');
    await db.dataSource.query('CREATE TABLE probe (id TEXT PRIMARY KEY)');
    const committed = jest.fn();
    const uow = new UnitOfWork(db.dataSource, { committed } as unknown as SqliteCheckpointerService);
    try {
      const insert = (name: string) => uow.transaction((tx) => tx.query('INSERT INTO probe (id) VALUES (?)', [name]));
      await insert('one');
      expect(committed).toHaveBeenCalledTimes(1);

      // Three units queued together share one commit.
      await Promise.all([insert('two'), insert('three'), insert('four')]);
      expect(committed).toHaveBeenCalledTimes(2);

      await uow.read((tx) => tx.query('SELECT count(*) AS n FROM probe'));
      await expect(uow.transaction(async () => Promise.reject(new Error('refused')))).rejects.toThrow('refused');
      expect(committed).toHaveBeenCalledTimes(2);
    } finally {
      await db.close();
    }
  });
});
