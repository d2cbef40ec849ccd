import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { DeadlineQueue } from '@fleet/service/deadline-queue';

export interface PoolLimits {
  /** Connections open (busy, idle or connecting) to one machine at most. */
  connectionsPerUpstream: number;
  /** Machines with a pool at most; the least recently used pool is closed past it. */
  upstreamsMax: number;
  connectTimeoutMs: number;
  /** Bound on waiting for one of a machine's connections when all are busy (slow readers). */
  waitTimeoutMs: number;
  /** Requests waiting for a machine's connection at most; past it the wait is refused at once. */
  waitersMax: number;
  /** A pooled connection unused this long is closed (before the machine closes it under us). */
  idleTimeoutMs: number;
}

/**
 * What every pooled TCP connection to a machine reads into (Node's `onread`): each read's bytes
 * are copied out into a buffer of their own size before anything else runs, so one buffer serves
 * every socket (JavaScript runs on one thread). Reading this way skips what a 'data' event costs
 * per read — the stream machinery around it and the 64 KiB buffer Node allocates for each read.
 */
const sharedReadBuffer = Buffer.allocUnsafe(64 * 1024);

/** Why a connection could not be had; `code` decides retries and the answer. */
export class UpstreamError extends Error {
  constructor(
    readonly code:
      | 'PROXY_CONNECT_TIMEOUT'
      | 'PROXY_POOL_TIMEOUT'
      | 'PROXY_POOL_FULL'
      | 'PROXY_UPSTREAM_CLOSED'
      | string,
    message: string,
  ) {
    super(message);
  }
}

/** What an exchange hears from the connection it holds. */
export interface UpstreamUser {
  data(chunk: Buffer): void;
  /** The connection's write buffer emptied (request body backpressure). */
  drain(): void;
  /** The machine ended or broke the connection (error is undefined on a clean end). */
  gone(error: Error | undefined): void;
}

/** Where a connection goes back when its exchange is done with it. */
export interface ConnectionOwner {
  idle(connection: UpstreamConnection): void;
  closed(connection: UpstreamConnection): void;
}

/**
 * One keep-alive TCP connection to a machine (or one backhaul stream: see backhaul-session.ts). Its listeners are set once and dispatch to the
 * exchange holding it: no listener is added or removed per request. Bytes or an end while idle
 * mean the machine closed it or broke framing: it is dropped, never reused.
 */
export class UpstreamConnection {
  user: UpstreamUser | undefined;
  /** It served a request before this one: a failure may be a keep-alive race, not the machine. */
  reused = false;
  idleSinceMs = 0;

  /** `readsItself`: the socket reads through `onread` and hands its bytes to `received`. */
  constructor(
    readonly socket: Duplex,
    private readonly pool: ConnectionOwner,
    readsItself = false,
  ) {
    if (!readsItself) socket.on('data', (chunk: Buffer) => this.received(chunk));
    socket.on('drain', () => this.user?.drain());
    socket.on('end', () => {
      const user = this.user;
      this.user = undefined;
      user?.gone(undefined);
      socket.destroy();
    });
    socket.on('error', () => {}); // 'close' follows and reports it
    socket.on('close', () => {
      const user = this.user;
      this.user = undefined;
      pool.closed(this);
      user?.gone(new UpstreamError('PROXY_UPSTREAM_CLOSED', 'the machine closed the connection'));
    });
  }

  received(chunk: Buffer): void {
    if (this.user !== undefined) this.user.data(chunk);
    else this.socket.destroy();
  }

  /** Back to the pool when the exchange left it at a message boundary, else closed. */
  release(reusable: boolean): void {
    this.user = undefined;
    if (reusable && !this.socket.destroyed) {
      // A slow client may have paused it on the response's last bytes: the next exchange
      // must hear its answer (and an idle connection must hear the machine close it).
      this.socket.resume();
      this.pool.idle(this);
    } else this.socket.destroy();
  }
}

/**
 * The idle connections (or backhaul streams) of one upstream: the most recently used goes out
 * first (the least likely to be stale), the oldest is swept first.
 */
export class IdleConnections {
  readonly #stack: UpstreamConnection[] = [];

  /** Parks a connection its exchange left reusable. */
  park(connection: UpstreamConnection): void {
    connection.idleSinceMs = Date.now();
    this.#stack.push(connection);
  }

  /** The most recently parked, off the stack; undefined when none is idle. */
  take(): UpstreamConnection | undefined {
    return this.#stack.pop();
  }

  /** A connection that closed: no longer idle. */
  forget(connection: UpstreamConnection): void {
    const index = this.#stack.indexOf(connection);
    if (index >= 0) this.#stack.splice(index, 1);
  }

  /** Closes the oldest (to make room for a fresh one). */
  closeOldest(): void {
    this.#stack.shift()?.socket.destroy();
  }

  /** Closes every one (the pool or session is gone). */
  closeAll(): void {
    for (const connection of this.#stack.splice(0)) connection.socket.destroy();
  }

  /** Closes those idle `idleTimeoutMs` or longer at `nowMs`. */
  sweep(nowMs: number, idleTimeoutMs: number): void {
    for (let oldest = this.#stack[0]; oldest !== undefined; oldest = this.#stack[0]) {
      if (nowMs - oldest.idleSinceMs < idleTimeoutMs) return;
      this.#stack.shift();
      oldest.socket.destroy();
    }
  }
}

class MachinePool implements ConnectionOwner {
  readonly #idle = new IdleConnections();
  readonly #waiters: DeadlineQueue<UpstreamConnection>;
  #open = 0;
  retired = false;
  lastUsedMs = 0;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly limits: PoolLimits,
  ) {
    this.#waiters = new DeadlineQueue(
      { waitersMax: limits.waitersMax, timeoutMs: limits.waitTimeoutMs },
      {
        full: () => new UpstreamError('PROXY_POOL_FULL', 'too many requests wait for this machine'),
        timedOut: () =>
          new UpstreamError('PROXY_POOL_TIMEOUT', 'every connection to the machine stayed busy'),
      },
    );
  }

  get open(): number {
    return this.#open;
  }

  acquire(fresh: boolean, nowMs: number): Promise<UpstreamConnection> | UpstreamConnection {
    this.lastUsedMs = nowMs;
    if (!fresh) {
      const idle = this.#idle.take();
      if (idle !== undefined) return idle;
    } else if (this.#open >= this.limits.connectionsPerUpstream) {
      this.#idle.closeOldest(); // make room for the fresh one
    }
    if (this.#open < this.limits.connectionsPerUpstream) return this.#connect();
    return this.#waiters.wait();
  }

  idle(connection: UpstreamConnection): void {
    connection.reused = true;
    if (this.retired) {
      connection.socket.destroy();
      return;
    }
    const waiter = this.#waiters.take();
    if (waiter !== undefined) {
      waiter.resolve(connection);
      return;
    }
    this.#idle.park(connection);
  }

  closed(connection: UpstreamConnection): void {
    this.#open -= 1;
    this.#idle.forget(connection);
    const waiter = this.#waiters.take();
    if (waiter === undefined) return;
    this.#connect().then(waiter.resolve, waiter.reject);
  }

  /** Closes idle connections older than the idle timeout (all of them once retired). */
  sweep(nowMs: number): void {
    if (this.retired) this.#idle.closeAll();
    else this.#idle.sweep(nowMs, this.limits.idleTimeoutMs);
  }

  retire(): void {
    this.retired = true;
    this.sweep(Date.now());
    this.#waiters.rejectAll(new UpstreamError('PROXY_POOL_FULL', 'the machine pool was closed'));
  }

  #connect(): Promise<UpstreamConnection> {
    this.#open += 1;
    return new Promise((resolve, reject) => {
      let connection: UpstreamConnection | undefined;
      const socket = connect({
        host: this.host,
        port: this.port,
        noDelay: true,
        onread: {
          buffer: sharedReadBuffer,
          callback: (bytes) => {
            const chunk = Buffer.allocUnsafe(bytes);
            sharedReadBuffer.copy(chunk, 0, 0, bytes);
            if (connection !== undefined) connection.received(chunk);
            else socket.destroy(); // nothing is read before 'connect'
            return true; // false would pause it: the exchange pauses it itself when it must
          },
        },
      });
      const timer = setTimeout(() => {
        socket.destroy(
          new UpstreamError('PROXY_CONNECT_TIMEOUT', 'connecting to the machine timed out'),
        );
      }, this.limits.connectTimeoutMs);
      const failed = (error: Error) => {
        clearTimeout(timer);
        this.#open -= 1;
        reject(error);
      };
      socket.once('error', failed);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', failed);
        connection = new UpstreamConnection(socket, this, true);
        resolve(connection);
      });
    });
  }
}

/**
 * Keep-alive connections to machines, one bounded pool per machine address, for the HTTP/1.1
 * relay. Bounded everywhere: connections per machine, waiters per machine and their wait,
 * machines with a pool, and how long a connection sits idle. One timer sweeps them all.
 */
export class UpstreamPools {
  readonly #pools = new Map<string, MachinePool>();
  readonly #timer: NodeJS.Timeout;

  constructor(private readonly limits: PoolLimits) {
    this.#timer = setInterval(() => this.#sweep(), Math.min(1_000, limits.idleTimeoutMs));
    this.#timer.unref();
  }

  /** A connection to `address` (`host:port`, `[v6]:port`): an idle one unless `fresh`. */
  acquire(address: string, fresh = false): Promise<UpstreamConnection> | UpstreamConnection {
    let pool = this.#pools.get(address);
    if (pool === undefined) {
      if (this.#pools.size >= this.limits.upstreamsMax) this.#evictLeastRecent();
      const colon = address.lastIndexOf(':');
      const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
      pool = new MachinePool(host, Number(address.slice(colon + 1)), this.limits);
      this.#pools.set(address, pool);
    }
    return pool.acquire(fresh, Date.now());
  }

  stats(): { machines: number; connections: number } {
    let connections = 0;
    for (const pool of this.#pools.values()) connections += pool.open;
    return { machines: this.#pools.size, connections };
  }

  close(): void {
    clearInterval(this.#timer);
    for (const pool of this.#pools.values()) pool.retire();
    this.#pools.clear();
  }

  #sweep(): void {
    const now = Date.now();
    for (const [address, pool] of this.#pools) {
      pool.sweep(now);
      if (pool.open === 0 && now - pool.lastUsedMs > this.limits.idleTimeoutMs)
        this.#pools.delete(address);
    }
  }

  #evictLeastRecent(): void {
    let oldest: [string, MachinePool] | undefined;
    for (const entry of this.#pools) {
      if (oldest === undefined || entry[1].lastUsedMs < oldest[1].lastUsedMs) oldest = entry;
    }
    if (oldest === undefined) return;
    this.#pools.delete(oldest[0]);
    oldest[1].retire();
  }
}
