import { Injectable } from '@nestjs/common';

/** How often a waiter looks at the database, for work finished by another process. */
const POLL_INTERVAL_MS = 500;

/**
 * Lets a request wait for an operation's outcome. A worker in this process
 * hands the outcome over directly; work finished elsewhere (another replica)
 * is noticed by polling.
 */
@Injectable()
export class OperationWaiter {
  private readonly waiters = new Map<string, Set<(result: unknown) => void>>();

  notify(operationId: string, result: unknown): void {
    const set = this.waiters.get(operationId);
    if (!set) return;
    this.waiters.delete(operationId);
    for (const resolve of set) resolve(result);
  }

  /** Resolves with the outcome, or null once `timeoutMs` has passed without one. */
  async wait<T>(operationId: string, timeoutMs: number, poll: () => Promise<T | null>): Promise<T | null> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) return null;
      const handed = await this.next<T>(operationId, Math.min(remaining, POLL_INTERVAL_MS));
      if (handed !== undefined) return handed;
      const polled = await poll();
      if (polled !== null) return polled;
    }
  }

  private next<T>(operationId: string, ms: number): Promise<T | undefined> {
    return new Promise<T | undefined>((resolve) => {
      let set = this.waiters.get(operationId);
      if (!set) {
        set = new Set();
        this.waiters.set(operationId, set);
      }
      const entry = (result: unknown) => {
        clearTimeout(timer);
        resolve(result as T);
      };
      const timer = setTimeout(() => {
        set!.delete(entry);
        if (set!.size === 0 && this.waiters.get(operationId) === set) this.waiters.delete(operationId);
        resolve(undefined);
      }, ms);
      set.add(entry);
    });
  }
}
