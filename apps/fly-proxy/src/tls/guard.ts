import type { Socket } from 'node:net';
import type { Logger } from '@fleet/service';
import type { TlsMetrics } from './metrics.js';

export interface GuardLimits {
  /** A connection with no byte in either direction and no request in flight this long is closed. */
  idleTimeoutMs: number;
  /**
   * Consecutive sweeps that saw bytes arrive but no request start or progress, before the
   * connection is closed as making no progress (seed 000).
   */
  wakeupsWithoutProgressMax: number;
  /** How often the guard looks at every connection (one timer for all of them). */
  sweepIntervalMs: number;
}

export const defaultGuardLimits: GuardLimits = {
  idleTimeoutMs: 60_000,
  wakeupsWithoutProgressMax: 30,
  sweepIntervalMs: 1_000,
};

/** What the guard knows about one connection. */
export interface Watched {
  requestsStarted: number;
  requestsInFlight: number;
}

interface Connection extends Watched {
  raw: Socket;
  /** What to destroy: the TLS socket over `raw` once there is one, else `raw`. */
  top: Socket;
  bytesIn: number;
  bytesOut: number;
  requestsSeen: number;
  quietSinceMs: number;
  wakeups: number;
}

const watchedKey = Symbol('fleet.connection-guard');

/**
 * Seed 000's lesson in Node: a connection that is "ready" but makes no progress (a TLS stream
 * after close_notify with bytes still buffered, a client trickling bytes that never form a
 * request, an h2 peer sending frames that start nothing) must not keep the proxy busy. Node gives
 * no per-socket wake-up hook, so one timer sweeps every connection: bytes that arrived since the
 * last sweep while no request started or progressed count as a wake-up without progress; too many
 * in a row close the connection, and so does a connection silent for the idle timeout. Requests
 * in flight are bounded by the relay's own timeouts, so the guard leaves them alone. The sweep
 * costs O(connections) per interval, never work per byte.
 */
export class ConnectionGuard {
  readonly #records = new Set<Connection>();
  readonly #timer: NodeJS.Timeout;
  readonly #closed = new Map<string, number>();
  #wakeups = 0;
  /** Sweeps run: a test that a connection was left alone waits for sweeps, not for time. */
  #sweeps = 0;

  constructor(
    private readonly listener: string,
    private readonly limits: GuardLimits,
    private readonly metrics: TlsMetrics,
    private readonly logger: Logger,
  ) {
    this.#timer = setInterval(() => this.sweep(), limits.sweepIntervalMs);
    this.#timer.unref();
  }

  get size(): number {
    return this.#records.size;
  }

  /** Starts watching a raw TCP socket; forgets it when it closes. */
  watch(raw: Socket): Watched {
    const record: Connection = {
      raw,
      top: raw,
      bytesIn: 0,
      bytesOut: 0,
      requestsStarted: 0,
      requestsInFlight: 0,
      requestsSeen: 0,
      quietSinceMs: Date.now(),
      wakeups: 0,
    };
    this.#records.add(record);
    raw.once('close', () => this.#records.delete(record));
    tag(raw, record);
    return record;
  }

  /** The TLS socket over a watched raw socket: closing then closes it, and requests find it. */
  attach(watched: Watched, top: Socket): void {
    const record = watched as Connection;
    record.top = top;
    tag(top, record);
    top.once('close', () => this.#records.delete(record));
  }

  /** Counts a connection closed for a reason the guard did not see itself (a handshake timeout). */
  counted(reason: string): void {
    this.#closed.set(reason, (this.#closed.get(reason) ?? 0) + 1);
    this.metrics.connectionsClosed.add(1, { listener: this.listener, reason });
  }

  /** For /status and tests: open connections, closes by reason, wake-ups without progress, sweeps. */
  stats(): {
    connections: number;
    closed: Record<string, number>;
    wakeupsWithoutProgress: number;
    sweeps: number;
  } {
    return {
      connections: this.#records.size,
      closed: Object.fromEntries(this.#closed),
      wakeupsWithoutProgress: this.#wakeups,
      sweeps: this.#sweeps,
    };
  }

  /** Destroys every watched connection and stops the timer. */
  close(): void {
    clearInterval(this.#timer);
    for (const record of this.#records) record.top.destroy();
    this.#records.clear();
  }

  private sweep(): void {
    this.#sweeps += 1;
    const now = Date.now();
    for (const record of this.#records) {
      const bytesIn = record.raw.bytesRead;
      const bytesOut = record.raw.bytesWritten;
      const arrived = bytesIn !== record.bytesIn;
      const sent = bytesOut !== record.bytesOut;
      const started = record.requestsStarted !== record.requestsSeen;
      record.bytesIn = bytesIn;
      record.bytesOut = bytesOut;
      record.requestsSeen = record.requestsStarted;
      if (started || (record.requestsInFlight > 0 && (sent || arrived))) {
        record.wakeups = 0;
        record.quietSinceMs = now;
      } else if (record.requestsInFlight > 0) {
        record.quietSinceMs = now;
      } else if (arrived) {
        record.quietSinceMs = now;
        record.wakeups += 1;
        this.#wakeups += 1;
        this.metrics.wakeupsWithoutProgress.add(1, { listener: this.listener });
        if (record.wakeups >= this.limits.wakeupsWithoutProgressMax)
          this.cut(record, 'no_progress');
      } else if (now - record.quietSinceMs >= this.limits.idleTimeoutMs) {
        this.cut(record, 'idle');
      }
    }
  }

  private cut(record: Connection, reason: 'idle' | 'no_progress'): void {
    this.#records.delete(record);
    this.counted(reason);
    this.logger.debug(
      {
        listener: this.listener,
        reason,
        remote: record.raw.remoteAddress,
        wakeups: record.wakeups,
      },
      'connection closed by the guard',
    );
    record.top.destroy();
    if (record.top !== record.raw) record.raw.destroy();
  }
}

function tag(socket: Socket, record: Connection): void {
  (socket as Socket & { [watchedKey]?: Connection })[watchedKey] = record;
}

/**
 * The guard's record for a request's socket: HTTP/1's socket itself, or for HTTP/2 the proxy
 * Node hands out for the session's socket (property reads pass through to the real socket; they
 * throw once the session is gone, which is then no record).
 */
export function watchedOf(socket: unknown): Watched | undefined {
  try {
    return (socket as { [watchedKey]?: Connection } | undefined)?.[watchedKey];
  } catch {
    return undefined;
  }
}
