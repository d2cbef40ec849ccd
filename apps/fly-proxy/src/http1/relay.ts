import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Airtime } from '../airtime/airtime.js';
import { Http2StreamClient } from '../http2/stream-client.js';
import type { ProxyDeps } from '../proxy-deps.js';
import { watchedOf } from '../tls/guard.js';
import { ClientConnection, type ClientSocket } from './client-connection.js';

export interface Http1Options {
  /** `edge` routes by Host; `backhaul` delivers what edges send to machines of `hostId`. */
  mode: 'edge' | 'backhaul';
  /** This proxy's host: machines elsewhere are reached through their host's backhaul. */
  hostId?: string;
  /** The fleet-key token edges present to backhauls (needed with `hostId`). */
  backhaulToken?: string;
  /** Bound on a request head (and on a body buffered before its machine is connected). */
  headBytesMax: number;
  /** A request head not complete this long after its first byte is answered 408 (slowloris). */
  clientHeadersTimeoutMs: number;
  /** A client that reads nothing of a response for this long is cut (slow readers). */
  clientWriteTimeoutMs: number;
  /** Bound on a machine answering a head, and on its silence mid-body. */
  upstreamTimeoutMs: number;
  /** Request bodies kept for fly-replay (up to 1 MB each), all exchanges together. */
  replayBodiesBytesMax: number;
}

/**
 * The HTTP/1.1 relay on raw sockets: the plain listener hands it every connection that is not
 * HTTP/2. It parses heads itself (head.ts), frames bodies itself (body.ts) and forwards bytes as
 * they come over pooled keep-alive connections (upstream-pools.ts): the hot path allocates no
 * stream, promise chain or header object per request beyond the heads' strings.
 */
export class Http1Relay {
  readonly #connections = new Set<ClientConnection>();
  /** HTTP/2 streams with an exchange in flight (their timeouts are swept as connections' are). */
  readonly #streams = new Set<Http2StreamClient>();
  readonly #timer: NodeJS.Timeout;
  readonly #idPrefix = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}-`;
  #sequence = 0;
  #slowReadersCut = 0;
  #replays = 0;
  #replayBodiesBytes = 0;
  /** Drain (issue 13): every response says `Connection: close` and its connection closes. */
  draining = false;
  /** Per-app bandwidth under the host's budget (src/airtime); a strict second instance's too. */
  airtime: Airtime | undefined;

  constructor(
    readonly deps: ProxyDeps,
    readonly options: Http1Options,
  ) {
    this.#timer = setInterval(() => this.#sweep(), 250);
    this.#timer.unref();
  }

  /** An HTTP/1.x client connection; `servicePort`: it came in on that service port's listener. */
  serve(socket: ClientSocket, servicePort?: number): void {
    this.#connections.add(new ClientConnection(socket, this, watchedOf(socket), servicePort));
  }

  forget(connection: ClientConnection): void {
    this.#connections.delete(connection);
  }

  /** One HTTP/2 request (h2, h2c), relayed through the same exchanges and pools. */
  serveStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[]): void {
    new Http2StreamClient(stream, this).start(headers, rawHeaders);
  }

  track(stream: Http2StreamClient): void {
    this.#streams.add(stream);
  }

  untrack(stream: Http2StreamClient): void {
    this.#streams.delete(stream);
  }

  /**
   * A request id unique across processes: the relay's start time, a random process tag, a
   * sequence number (no clock read or radix conversion per request).
   */
  requestId(): string {
    this.#sequence += 1;
    return `${this.#idPrefix}${this.#sequence}`;
  }

  slowReaderCut(): void {
    this.#slowReadersCut += 1;
  }

  replayed(): void {
    this.#replays += 1;
  }

  /** Whether `bytes` more of a request body may be kept for a replay (taken from the budget). */
  keepForReplay(bytes: number): boolean {
    if (this.#replayBodiesBytes + bytes > this.options.replayBodiesBytesMax) return false;
    this.#replayBodiesBytes += bytes;
    return true;
  }

  releaseReplay(bytes: number): void {
    this.#replayBodiesBytes -= bytes;
  }

  stats(): {
    connections: number;
    streams: number;
    slowReadersCut: number;
    replays: number;
    replayBodiesBytes: number;
  } {
    return {
      connections: this.#connections.size,
      streams: this.#streams.size,
      slowReadersCut: this.#slowReadersCut,
      replays: this.#replays,
      replayBodiesBytes: this.#replayBodiesBytes,
    };
  }

  /** Drain: ends each connection that waits for its next request (none half-read). */
  closeIdle(): void {
    for (const connection of this.#connections) {
      if (connection.exchange === undefined && connection.buffer === null) connection.socket.end();
    }
  }

  close(): void {
    clearInterval(this.#timer);
    for (const connection of this.#connections) connection.socket.destroy();
    this.#connections.clear();
    for (const stream of this.#streams) stream.reset();
    this.#streams.clear();
  }

  #sweep(): void {
    const now = Date.now();
    const headersTimeoutMs = this.options.clientHeadersTimeoutMs;
    for (const stream of this.#streams) stream.exchange?.sweep(now);
    for (const connection of this.#connections) {
      if (connection.exchange !== undefined) connection.exchange.sweep(now);
      else if (connection.headStartedMs !== 0 && now - connection.headStartedMs > headersTimeoutMs)
        connection.refuse(
          408,
          'PROXY_ERR_CLIENT_TIMEOUT',
          'the request head did not arrive in time',
        );
    }
  }
}
