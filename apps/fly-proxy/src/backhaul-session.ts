import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  type OutgoingHttpHeaders,
  type SecureClientSessionOptions,
} from 'node:http2';
import type { Logger } from '@fleet/service';
import { backoffMs } from '@fleet/service/backoff';
import { DeadlineQueue } from '@fleet/service/deadline-queue';
import { backhaulHeaders } from './backhaul.js';
import {
  type ConnectionOwner,
  IdleConnections,
  UpstreamConnection,
  UpstreamError,
} from './http1/upstream-pools.js';

export interface BackhaulLimits {
  connectTimeoutMs: number;
  /** Streams in flight on one session at most (also bounded by the backhaul's SETTINGS). */
  streamsMax: number;
  /** Bound on waiting for a stream slot when the session is full, and on such waiters. */
  waitTimeoutMs: number;
  waitersMax: number;
  /** How often a PING measures the round trip to the backhaul's host. */
  pingIntervalMs: number;
  /** A PING unanswered this long means a dead session (a cut that sent no FIN or RST): closed. */
  pingTimeoutMs: number;
  /** An open stream unused this long is closed (as an idle pooled connection is). */
  idleTimeoutMs: number;
  /** Sessions (backhaul hosts) at most; the least recently used is closed past it. */
  sessionsMax: number;
}

/** The flow-control window of a backhaul session and of each stream: bulk bodies need more than 64 KB. */
export const backhaulWindowBytes = 4 * 1024 * 1024;
const backoffMsMin = 100;
const backoffMsMax = 5_000;

/**
 * The edge's side of the edge → worker hop: ONE HTTP/2 session per backhaul address (h2c with
 * prior knowledge: the fleet's private network, as Fly's WireGuard mesh), every request or TCP
 * connection to that host a CONNECT stream on it. The session is opened on first use, measures
 * the round trip to its host by PING (feeding the catalog's RTT; a PING left unanswered closes
 * the session, which a silent network cut would otherwise keep for minutes), and after it drops is opened
 * again on the next use — at once after a session that worked, with a doubling backoff after
 * failed connects, when requests fail fast as "never reached" (the next candidate is tried).
 */
export class BackhaulSessions {
  readonly #sessions = new Map<string, BackhaulSession>();
  readonly #timer: NodeJS.Timeout;
  #connects = 0;
  #pingTimeouts = 0;

  constructor(
    private readonly limits: BackhaulLimits,
    private readonly token: string,
    private readonly recordRtt: (hostId: string, rttMs: number) => void,
    private readonly logger: Logger,
  ) {
    this.#timer = setInterval(
      () => {
        const now = Date.now();
        for (const session of this.#sessions.values()) session.sweep(now);
      },
      Math.min(1_000, limits.idleTimeoutMs),
    );
    this.#timer.unref();
  }

  /**
   * A stream to the backhaul's HTTP/1.1 relay, as a pooled keep-alive connection: an idle one
   * of the session unless `fresh`, else a new stream.
   */
  acquire(
    address: string,
    hostId: string,
    fresh = false,
  ): UpstreamConnection | Promise<UpstreamConnection> {
    return this.#session(address, hostId).acquire(fresh);
  }

  /** A stream the backhaul pipes to `machineId`'s private address (TCP passthrough). */
  async tunnel(
    address: string,
    hostId: string,
    machine: { id: string; app: string },
    port: number,
  ): Promise<ClientHttp2Stream> {
    const session = this.#session(address, hostId);
    const stream = await session.open({
      [backhaulHeaders.stream]: 'tcp',
      [backhaulHeaders.machine]: machine.id,
      [backhaulHeaders.app]: machine.app,
      [backhaulHeaders.port]: String(port),
    });
    // The answer decides: 200 and the bytes flow; anything else and there is no tunnel.
    return new Promise((resolve, reject) => {
      stream.once('response', (headers) => {
        if (headers[':status'] === 200) resolve(stream);
      });
      stream.once('close', () =>
        reject(new UpstreamError('PROXY_UPSTREAM_CLOSED', 'the backhaul refused the tunnel')),
      );
    });
  }

  /**
   * Sessions open, streams in flight, sessions ever connected and sessions closed for a PING
   * left unanswered (for /status and tests).
   */
  stats(): { sessions: number; streams: number; connects: number; pingTimeouts: number } {
    let streams = 0;
    let sessions = 0;
    for (const session of this.#sessions.values()) {
      streams += session.active;
      if (session.connected) sessions += 1;
    }
    return { sessions, streams, connects: this.#connects, pingTimeouts: this.#pingTimeouts };
  }

  close(): void {
    clearInterval(this.#timer);
    for (const session of this.#sessions.values()) session.close();
    this.#sessions.clear();
  }

  #session(address: string, hostId: string): BackhaulSession {
    let session = this.#sessions.get(address);
    if (session !== undefined) {
      this.#sessions.delete(address);
      this.#sessions.set(address, session); // most recently used last
      return session;
    }
    if (this.#sessions.size >= this.limits.sessionsMax) {
      const [oldest, least] = this.#sessions.entries().next().value as [string, BackhaulSession];
      this.#sessions.delete(oldest);
      least.close();
    }
    session = new BackhaulSession(address, hostId, this.limits, this.token, {
      rtt: this.recordRtt,
      connected: () => {
        this.#connects += 1;
      },
      pingTimedOut: () => {
        this.#pingTimeouts += 1;
      },
      logger: this.logger,
    });
    this.#sessions.set(address, session);
    return session;
  }
}

class BackhaulSession implements ConnectionOwner {
  /** Streams open (busy or idle): what SETTINGS_MAX_CONCURRENT_STREAMS bounds. */
  active = 0;
  readonly #idle = new IdleConnections();
  /** Slots handed to waiters that have not opened their stream yet (no one else may take them). */
  #reserved = 0;
  #session: ClientHttp2Session | undefined;
  #connecting: Promise<ClientHttp2Session> | undefined;
  #retryAtMs = 0;
  /** Failed connects in a row (the backoff's attempt). */
  #failures = 0;
  #pinger: NodeJS.Timeout | undefined;
  readonly #waiters: DeadlineQueue<void>;

  constructor(
    private readonly address: string,
    private readonly hostId: string,
    private readonly limits: BackhaulLimits,
    private readonly token: string,
    private readonly hooks: {
      rtt: (hostId: string, rttMs: number) => void;
      connected: () => void;
      pingTimedOut: () => void;
      logger: Logger;
    },
  ) {
    this.#waiters = new DeadlineQueue(
      { waitersMax: limits.waitersMax, timeoutMs: limits.waitTimeoutMs },
      {
        full: () =>
          new UpstreamError('PROXY_POOL_FULL', 'too many requests wait for the backhaul session'),
        timedOut: () =>
          new UpstreamError('PROXY_POOL_TIMEOUT', 'every stream of the backhaul stayed busy'),
      },
    );
  }

  get connected(): boolean {
    return this.#session !== undefined;
  }

  acquire(fresh: boolean): UpstreamConnection | Promise<UpstreamConnection> {
    if (!fresh) {
      const idle = this.#idle.take();
      if (idle !== undefined) return idle;
    }
    const opened = this.open({ [backhaulHeaders.stream]: 'http' });
    if (opened instanceof Promise)
      return opened.then((stream) => new UpstreamConnection(stream, this));
    return new UpstreamConnection(opened, this);
  }

  /** Closes streams idle longer than the idle timeout. */
  sweep(nowMs: number): void {
    this.#idle.sweep(nowMs, this.limits.idleTimeoutMs);
  }

  /** A new CONNECT stream; synchronous when the session is up and has a free slot. */
  open(extra: OutgoingHttpHeaders): ClientHttp2Stream | Promise<ClientHttp2Stream> {
    const session = this.#session;
    const free = session !== undefined && this.active + this.#reserved < this.#slots(session);
    if (free && this.#waiters.length === 0) return this.#request(session, extra);
    return this.#openLater(extra);
  }

  async #openLater(extra: OutgoingHttpHeaders): Promise<ClientHttp2Stream> {
    const session = this.#session ?? (await this.#connect());
    if (this.active + this.#reserved >= this.#slots(session)) {
      await this.#waiters.wait();
      this.#reserved -= 1;
    }
    const now = this.#session;
    if (now === undefined)
      throw new UpstreamError('PROXY_BACKHAUL_DOWN', `the backhaul ${this.address} went away`);
    return this.#request(now, extra);
  }

  // --- ConnectionOwner: a stream's exchange is done ---

  /**
   * The stream carries the next exchange too (the backhaul's relay keeps it alive as it keeps a
   * connection): new streams cost more CPU per request than HTTP/1.1 on a pooled one. When
   * requests wait for a slot it is closed instead, and the slot goes to them.
   */
  idle(connection: UpstreamConnection): void {
    connection.reused = true;
    if (this.#session === undefined || this.#waiters.length > 0) {
      connection.socket.destroy();
      return;
    }
    this.#idle.park(connection);
  }

  closed(connection: UpstreamConnection): void {
    this.#idle.forget(connection);
  }

  close(): void {
    this.#session?.close();
    this.#dropped();
  }

  #request(session: ClientHttp2Session, extra: OutgoingHttpHeaders): ClientHttp2Stream {
    const stream = session.request(
      {
        ':method': 'CONNECT',
        ':authority': this.address,
        [backhaulHeaders.auth]: this.token,
        ...extra,
      },
      { endStream: false },
    );
    this.active += 1;
    stream.on('error', () => {}); // 'close' follows; its user hears of it there
    stream.once('close', () => {
      this.active -= 1;
      const waiter = this.#waiters.take();
      if (waiter !== undefined) {
        this.#reserved += 1;
        waiter.resolve();
      }
    });
    stream.once('response', (headers) => {
      const status = headers[':status'];
      // A refusal's body is the backhaul's JSON, never bytes of the tunnel.
      if (status !== 200)
        stream.destroy(
          new UpstreamError('PROXY_BACKHAUL_REFUSED', `the backhaul answered ${status}`),
        );
    });
    return stream;
  }

  /** The session's stream bound: ours, or the backhaul's SETTINGS_MAX_CONCURRENT_STREAMS. */
  #slots(session: ClientHttp2Session): number {
    const theirs = session.remoteSettings.maxConcurrentStreams ?? this.limits.streamsMax;
    return Math.min(this.limits.streamsMax, theirs);
  }

  #connect(): Promise<ClientHttp2Session> {
    if (this.#connecting !== undefined) return this.#connecting;
    if (Date.now() < this.#retryAtMs)
      return Promise.reject(
        new UpstreamError(
          'PROXY_BACKHAUL_DOWN',
          `the backhaul ${this.address} is unreachable (retried after a backoff)`,
        ),
      );
    const connecting = new Promise<ClientHttp2Session>((resolve, reject) => {
      const session = connect(`http://${this.address}`, {
        settings: { enablePush: false, initialWindowSize: backhaulWindowBytes },
        noDelay: true, // frames of many streams: never held back by Nagle (passed to net.connect)
      } as SecureClientSessionOptions);
      const timer = setTimeout(() => {
        session.destroy(
          new UpstreamError('PROXY_CONNECT_TIMEOUT', 'connecting to the backhaul timed out'),
        );
      }, this.limits.connectTimeoutMs);
      const failed = (error: Error) => {
        clearTimeout(timer);
        this.#retryAtMs =
          Date.now() + backoffMs(this.#failures, { baseMs: backoffMsMin, maxMs: backoffMsMax });
        this.#failures += 1;
        reject(error);
      };
      session.once('error', failed);
      session.once('connect', () => {
        clearTimeout(timer);
        session.off('error', failed);
        this.#established(session);
        resolve(session);
      });
    });
    this.#connecting = connecting;
    const settle = () => {
      this.#connecting = undefined;
    };
    connecting.then(settle, settle);
    return connecting;
  }

  #established(session: ClientHttp2Session): void {
    this.#session = session;
    this.#failures = 0;
    this.#retryAtMs = 0;
    this.hooks.connected();
    session.setLocalWindowSize(backhaulWindowBytes);
    session.on('error', (error) =>
      this.hooks.logger.warn({ err: error, backhaul: this.address }, 'backhaul session failed'),
    );
    // A GOAWAY (the backhaul stopping): streams in flight finish, new ones go to a new session.
    const gone = () => {
      if (this.#session === session) this.#dropped();
    };
    session.once('goaway', gone);
    session.once('close', gone);
    // One PING out at a time. Over a cut that dropped packets silently, TCP keeps the connection
    // and retransmits with a growing backoff, so after the network heals a request on it could
    // wait seconds for the next retransmission: an unanswered PING closes the session instead, and
    // the next request connects anew.
    let unanswered: NodeJS.Timeout | undefined;
    const ping = () => {
      if (session.destroyed || session.closed || unanswered !== undefined) return;
      unanswered = setTimeout(() => {
        this.hooks.pingTimedOut();
        session.destroy(
          new UpstreamError(
            'PROXY_BACKHAUL_DOWN',
            `the backhaul ${this.address} left a PING unanswered for ${this.limits.pingTimeoutMs} ms`,
          ),
        );
      }, this.limits.pingTimeoutMs);
      unanswered.unref();
      session.ping((error, durationMs) => {
        clearTimeout(unanswered);
        unanswered = undefined;
        if (error === null) this.hooks.rtt(this.hostId, durationMs);
      });
    };
    ping();
    this.#pinger = setInterval(ping, this.limits.pingIntervalMs);
    this.#pinger.unref();
  }

  #dropped(): void {
    this.#session = undefined;
    clearInterval(this.#pinger);
    this.#idle.closeAll();
    this.#waiters.rejectAll(
      new UpstreamError('PROXY_BACKHAUL_DOWN', `the backhaul ${this.address} went away`),
    );
  }
}
