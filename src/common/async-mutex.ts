/**
 * A FIFO mutex for async work. SQLite has one connection shared by every
 * request, so transactions must not interleave on it.
 */
export class AsyncMutex {
  private tail: Promise<void> = Promise.resolve();

  run<T>(work: () => Promise<T>): Promise<T> {
    const result = this.tail.then(work);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
