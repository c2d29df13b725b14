import { settled, together } from './statements-together';
import type { Tx } from './unit-of-work';

const txOn = (type: 'postgres' | 'better-sqlite3') => ({ connection: { options: { type } } }) as unknown as Tx;

/** A statement that records when it starts and answers when `answer()` is called. */
function pending(log: string[], name: string) {
  let answer!: (value: string) => void;
  const run = () => {
    log.push(`start ${name}`);
    return new Promise<string>((resolve) => (answer = resolve)).then((value) => {
      log.push(`done ${name}`);
      return value;
    });
  };
  return { run, answer: (value = name) => answer(value) };
}

describe('together', () => {
  it('on PostgreSQL starts every statement at once, in the order given, and hands back every outcome in that order', async () => {
    const log: string[] = [];
    const [a, b] = [pending(log, 'a'), pending(log, 'b')];
    const outcomes = together(txOn('postgres'), [a.run, null, b.run]);
    expect(log).toEqual(['start a', 'start b']);
    b.answer();
    a.answer();
    expect(await outcomes).toEqual([
      { status: 'fulfilled', value: 'a' },
      { status: 'fulfilled', value: null },
      { status: 'fulfilled', value: 'b' },
    ]);
  });

  it('on SQLite starts each statement once the one before has finished', async () => {
    const log: string[] = [];
    const [a, b] = [pending(log, 'a'), pending(log, 'b')];
    const outcomes = together(txOn('better-sqlite3'), [a.run, b.run]);
    await Promise.resolve();
    expect(log).toEqual(['start a']);
    a.answer();
    await new Promise((resolve) => setImmediate(resolve));
    expect(log).toEqual(['start a', 'done a', 'start b']);
    b.answer();
    expect((await outcomes).map(settled)).toEqual(['a', 'b']);
  });

  it.each(['postgres', 'better-sqlite3'] as const)('on %s, waits for every statement even when one fails, a synchronous throw included', async (type) => {
    const failure = new Error('duplicate key');
    const outcomes = await together(txOn(type), [
      async () => false,
      () => {
        throw failure;
      },
      async () => 3,
    ]);
    expect(outcomes).toEqual([
      { status: 'fulfilled', value: false },
      { status: 'rejected', reason: failure },
      { status: 'fulfilled', value: 3 },
    ]);
  });
});

describe('settled', () => {
  it('gives the answer of a statement that succeeded and throws the error of one that failed', () => {
    expect(settled({ status: 'fulfilled', value: 2 })).toBe(2);
    const failure = new Error('aborted');
    expect(() => settled({ status: 'rejected', reason: failure })).toThrow(failure);
  });
});
