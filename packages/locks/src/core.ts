import assert from 'node:assert/strict';

export type LockMode = 'read' | 'write';

/** What a release with nobody queued answers, without allocating. */
const nothingGranted: readonly never[] = Object.freeze([]);

/**
 * A request as the core sees it. The core links queued requests through `queuePrev` and
 * `queueNext` (an intrusive doubly linked list), so leaving the queue from anywhere costs O(1):
 * a storm of 10,000 timeouts is 10,000 unlinks, not 10,000 scans of the queue.
 */
export interface CoreRequest {
  readonly mode: LockMode;
  /** Set by the core: true while the request is in the queue. */
  queued: boolean;
  queuePrev: CoreRequest | undefined;
  queueNext: CoreRequest | undefined;
}

/**
 * The queueing core of RwLock as a pure synchronous state machine, so that every interleaving
 * can be enumerated in a test. Events: `request`, `release`, `leave` (a timeout or a cancel);
 * each answers which requests it granted. FIFO with reader batching: the head of the queue is
 * granted when compatible, and readers right behind a granted reader with it; a queued writer
 * blocks every request behind it.
 */
export class LockCore<R extends CoreRequest = CoreRequest> {
  /** Readers holding the lock. */
  readers = 0;
  /** The request holding the write lock. */
  writer: R | undefined = undefined;
  #head: R | undefined = undefined;
  #tail: R | undefined = undefined;
  #length = 0;

  /** Requests waiting. */
  get length(): number {
    return this.#length;
  }

  /** The oldest request waiting. */
  get head(): R | undefined {
    return this.#head;
  }

  /** The waiting requests, oldest first (O(n): for snapshots and tests, not for the hot path). */
  queue(): R[] {
    const waiting: R[] = [];
    for (let node = this.#head; node !== undefined; node = node.queueNext as R | undefined)
      waiting.push(node);
    return waiting;
  }

  /** True when a request would be granted at once (nobody queued, compatible holders). */
  grantable(mode: LockMode): boolean {
    if (this.#length > 0 || this.writer !== undefined) return false;
    return mode === 'read' || this.readers === 0;
  }

  /** Grants at once when possible (returns true), else queues the request. */
  request(request: R): boolean {
    if (this.grantable(request.mode)) {
      this.#hold(request);
      return true;
    }
    request.queued = true;
    request.queuePrev = this.#tail;
    request.queueNext = undefined;
    if (this.#tail === undefined) this.#head = request;
    else this.#tail.queueNext = request;
    this.#tail = request;
    this.#length++;
    return false;
  }

  /** A holder leaves; returns the requests granted in consequence. */
  release(holder: R): readonly R[] {
    if (holder.mode === 'write') {
      if (this.writer !== holder)
        assert.fail('a write released by a request that does not hold it');
      this.writer = undefined;
    } else {
      if (this.readers <= 0) assert.fail('a read released with no reader inside');
      this.readers--;
    }
    return this.#grantWaiters();
  }

  /**
   * A queued request gives up (timeout, cancel). Returns null when it is not queued any more
   * (it was granted in the same tick: the grant stands), else the requests granted because the
   * one that left was blocking them.
   */
  leave(request: R): readonly R[] | null {
    if (!request.queued) return null;
    this.#unlink(request);
    return this.#grantWaiters();
  }

  /** Invariants that hold after every event; a breach is a bug, so it throws. */
  check(): void {
    assert.ok(
      this.writer === undefined || this.readers === 0,
      'a writer holds the lock with readers',
    );
    assert.ok(this.readers >= 0, 'fewer than zero readers');
    const head = this.#head;
    if (head === undefined) return;
    const headGrantable =
      head.mode === 'read'
        ? this.writer === undefined
        : this.writer === undefined && this.readers === 0;
    assert.ok(!headGrantable, `a ${head.mode} request is grantable but left waiting`);
  }

  #hold(request: R): void {
    if (request.mode === 'write') this.writer = request;
    else this.readers++;
  }

  #unlink(request: R): void {
    const { queuePrev, queueNext } = request;
    if (queuePrev === undefined) this.#head = queueNext as R | undefined;
    else queuePrev.queueNext = queueNext;
    if (queueNext === undefined) this.#tail = queuePrev as R | undefined;
    else queueNext.queuePrev = queuePrev;
    request.queued = false;
    request.queuePrev = undefined;
    request.queueNext = undefined;
    this.#length--;
  }

  #grantWaiters(): readonly R[] {
    if (this.#head === undefined) return nothingGranted;
    const granted: R[] = [];
    for (let head = this.#head; head !== undefined; head = this.#head) {
      if (this.writer !== undefined || (head.mode === 'write' && this.readers > 0)) break;
      this.#unlink(head);
      this.#hold(head);
      granted.push(head);
      if (head.mode === 'write') break;
    }
    return granted;
  }
}
