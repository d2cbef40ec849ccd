import { type LockLogger, RwLock } from '@fleet/locks';
import type { AppEntry } from './model.js';

function isPromiseLike(value: unknown): value is Promise<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/**
 * One lock and the state it guards. `writers` counts writes queued or holding, taken through
 * `write()` only: while it is 0 no writer holds or waits, so a synchronous read can run at once
 * without going through the lock — exactly what RwLock's own uncontended read would do, minus
 * its promise and bookkeeping (the closure is synchronous, so nobody can observe the gap).
 * Everything else (a writer holding or queued) goes through the lock and waits its turn.
 */
export class Guarded<T> {
  readonly lock: RwLock;
  writers = 0;

  constructor(
    name: string,
    readonly state: T,
    options: { writeTimeoutMs: number; logger: LockLogger },
  ) {
    this.lock = new RwLock({
      name,
      writeTimeoutMs: options.writeTimeoutMs,
      logger: options.logger,
    });
  }

  /** Runs a synchronous reader: at once when no writer holds or waits, else through the lock. */
  read<R>(label: string, context: Record<string, string>, fn: (state: T) => R): R | Promise<R> {
    if (this.writers === 0) return fn(this.state);
    return this.lock.read(label, () => fn(this.state), { context });
  }

  /** Runs a writer under the write lock (labelled, with context); resolves once it released. */
  write<R>(
    label: string,
    context: Record<string, string>,
    fn: (state: T) => R | Promise<R>,
  ): Promise<R> {
    this.writers++;
    let ran = false;
    const body = (): R | Promise<R> => {
      ran = true;
      let result: R | Promise<R>;
      try {
        result = fn(this.state);
      } catch (error) {
        this.writers--;
        throw error;
      }
      if (!isPromiseLike(result)) {
        this.writers--;
        return result;
      }
      return (result as Promise<R>).finally(() => {
        this.writers--;
      });
    };
    return this.lock.write(label, body, { context }).catch((error: unknown) => {
      if (!ran) this.writers--; // refused or timed out before the closure ran
      throw error;
    });
  }
}

/** The apps of one shard. */
export type ShardState = Map<string, AppEntry>;

/** FNV-1a over the UTF-16 code units: a cheap, stable spread of app names over shards. */
export function shardIndex(app: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < app.length; i++) {
    hash ^= app.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % shards;
}
