import assert from 'node:assert/strict';

export type LockMode = 'read' | 'write';

/**
 * The queueing core of RwLock as a pure synchronous state machine, so that every interleaving
 * can be enumerated in a test. Waiters are numbered by the caller. Events: `request`,
 * `release`, `leave` (a timeout or a cancel); each answers which waiters it granted. FIFO with
 * reader batching: the head of the queue is granted when compatible, and readers right behind a
 * granted reader with it; a queued writer blocks every request behind it.
 */
export class LockCore {
  readonly readers = new Set<number>();
  writer: number | null = null;
  readonly queue: { id: number; mode: LockMode }[] = [];

  /** True when a request would be granted at once (nobody queued, compatible holders). */
  grantable(mode: LockMode): boolean {
    if (this.queue.length > 0 || this.writer !== null) return false;
    return mode === 'read' || this.readers.size === 0;
  }

  /** Grants at once when possible (returns true), else queues the request. */
  request(id: number, mode: LockMode): boolean {
    if (this.grantable(mode)) {
      this.#hold(id, mode);
      return true;
    }
    this.queue.push({ id, mode });
    return false;
  }

  /** A holder leaves; returns the waiters granted in consequence. */
  release(id: number): number[] {
    if (this.writer === id) this.writer = null;
    else if (!this.readers.delete(id)) assert.fail(`waiter ${id} released a lock it does not hold`);
    return this.#grantWaiters();
  }

  /**
   * A queued waiter gives up (timeout, cancel). Returns null when it is not queued any more
   * (it was granted in the same tick: the grant stands), else the waiters granted because the
   * one that left was blocking them.
   */
  leave(id: number): number[] | null {
    const index = this.queue.findIndex((waiter) => waiter.id === id);
    if (index === -1) return null;
    this.queue.splice(index, 1);
    return this.#grantWaiters();
  }

  /** Invariants that hold after every event; a breach is a bug, so it throws. */
  check(): void {
    assert.ok(
      this.writer === null || this.readers.size === 0,
      'a writer holds the lock with readers',
    );
    const head = this.queue[0];
    if (head === undefined) return;
    const headGrantable =
      head.mode === 'read' ? this.writer === null : this.writer === null && this.readers.size === 0;
    assert.ok(!headGrantable, `waiter ${head.id} (${head.mode}) is grantable but left waiting`);
  }

  #hold(id: number, mode: LockMode): void {
    if (mode === 'write') this.writer = id;
    else this.readers.add(id);
  }

  #grantWaiters(): number[] {
    const granted: number[] = [];
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      if (this.writer !== null || (head.mode === 'write' && this.readers.size > 0)) break;
      this.queue.shift();
      this.#hold(head.id, head.mode);
      granted.push(head.id);
      if (head.mode === 'write') break;
    }
    return granted;
  }
}
