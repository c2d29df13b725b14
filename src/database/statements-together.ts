import type { Tx } from './unit-of-work';

type Statement<T> = (() => Promise<T>) | null;
type Outcomes<T extends readonly Statement<unknown>[]> = { -readonly [K in keyof T]: PromiseSettledResult<T[K] extends Statement<infer R> ? R | null : never> };

/**
 * Independent statements of one transaction, sent together on PostgreSQL.
 *
 * The pool's clients pipeline (node-postgres `pipeline: true`,
 * data-source-options.ts): a statement started while an earlier one of the
 * same transaction still waits for its answer leaves at once instead of
 * after that answer, so n statements cost one round trip where they cost n.
 * That matters most at the end of a claim or a release, where the host's,
 * the GPUs' and the user's rows stay locked until COMMIT and every round
 * trip makes the next request for those rows wait longer
 * (docs/benchmarks.md). Each function is called in the order given, without
 * waiting: every repository write reaches TypeORM's PostgreSQL query runner
 * synchronously and the driver after the same number of microtask turns, so
 * the database receives them in that order, which must be the lock order and
 * put a row before the rows that refer to it (a PostgreSQL medium test,
 * statements-together.medium-spec.ts, checks the order on the wire). A
 * `null` stands for a statement this call does not need.
 *
 * SQLite has no round trips to save, and its query runner prepares a
 * statement it has not seen before one microtask turn later than one it has,
 * which would reorder them: there, each runs after the one before has
 * finished.
 *
 * Judge the outcomes in order with `settled`: the first one that failed, or
 * whose check fails, decides, as it would have if the rest had never been
 * sent. What the rest did is rolled back with the transaction.
 */
export async function together<T extends readonly Statement<unknown>[] | []>(tx: Tx, statements: T): Promise<Outcomes<T>> {
  if (tx.connection.options.type === 'postgres') {
    corkUntilSent(tx);
    // Each is called at once; `new Promise` turns a synchronous throw into that statement's failure.
    return Promise.allSettled(statements.map((run) => new Promise((resolve) => resolve(run ? run() : null)))) as Promise<Outcomes<T>>;
  }
  const outcomes: PromiseSettledResult<unknown>[] = [];
  for (const run of statements) {
    try {
      outcomes.push({ status: 'fulfilled', value: run ? await run() : null });
    } catch (reason) {
      outcomes.push({ status: 'rejected', reason });
    }
  }
  return outcomes as Outcomes<T>;
}

/** The socket of a node-postgres client: writes held back while corked leave in one write when uncorked. */
interface CorkableClient {
  connection?: { stream?: { cork?: () => void; uncork?: () => void } };
}

/**
 * Holds the transaction's socket writes until every statement started now has
 * reached the driver, so they leave in one write system call instead of one
 * each (node-postgres corks and uncorks around each statement; corks nest).
 * The statements reach the driver within this turn's microtasks, and a
 * `process.nextTick` callback queued now runs only after those have drained.
 */
function corkUntilSent(tx: Tx): void {
  const stream = (tx.queryRunner as { databaseConnection?: CorkableClient } | undefined)?.databaseConnection?.connection?.stream;
  if (!stream?.cork || !stream.uncork) return;
  stream.cork();
  process.nextTick(() => stream.uncork!());
}

/** `together`, for statements whose answers the caller does not need: throws the first failure, in order. */
export async function allTogether(tx: Tx, statements: readonly Statement<unknown>[]): Promise<void> {
  (await together(tx, statements)).forEach(settled);
}

/** The statement's answer, or its error thrown: judge `together`'s outcomes with it, in order. */
export function settled<T>(outcome: PromiseSettledResult<T>): T {
  if (outcome.status === 'rejected') throw outcome.reason;
  return outcome.value;
}
