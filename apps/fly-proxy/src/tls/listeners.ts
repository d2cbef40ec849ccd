import {
  createServer as createH2cServer,
  type Http2Server,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
  type ServerOptions,
} from 'node:http2';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import {
  createServer as createTlsServer,
  type TLSSocket,
  type Server as TlsServer,
} from 'node:tls';
import type { Logger } from '@fleet/service';
import { ConnectionGuard, defaultGuardLimits, type GuardLimits } from './guard.js';
import type { TlsMetrics } from './metrics.js';
import type { CertificateStore } from './store.js';

/**
 * Where HTTP/2 requests go, one stream each (Node's core API, not the compat objects): the
 * handler counts its requests for the guard (`watchedOf(stream.session.socket)`).
 */
export type StreamHandler = (
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  flags: number,
  rawHeaders: string[],
) => void;

export interface ListenerOptions extends Partial<GuardLimits> {
  /** Serves HTTP/2 requests. */
  http2: StreamHandler;
  /**
   * The HTTP/2 server's options: the SETTINGS it announces (a backhaul bounds its streams per
   * session, an edge allows extended CONNECT) and the bound on request heads
   * (`http2ServerOptions`).
   */
  http2Options?: ServerOptions;
  /** Takes every connection that is not HTTP/2 (the HTTP/1.1 relay). */
  http1: (socket: Socket) => void;
  logger: Logger;
  metrics: TlsMetrics;
  /** Bound on open connections of this listener. */
  connectionsMax?: number;
}

export interface TlsListenerOptions extends ListenerOptions {
  store: Pick<CertificateStore, 'sniCallback'>;
  /** A TLS handshake not finished this long after the connection opened is cut. */
  handshakeTimeoutMs?: number;
}

export interface PlainListenerOptions extends ListenerOptions {
  /** A connection whose first bytes do not say HTTP/1.1 or HTTP/2 within this long is cut. */
  sniffTimeoutMs?: number;
}

export interface Listener<S> {
  server: S;
  guard: ConnectionGuard;
  listen(port: number, host: string): Promise<{ address: string; port: number }>;
  /** Stops accepting, and destroys every open connection. */
  close(): Promise<void>;
  /**
   * Drain (issue 13): closes the listening handle only (never `http.Server.close()`, which resets
   * accepted connections on Node 19+) and sends GOAWAY on every HTTP/2 session, now and later:
   * their open streams finish, then they close.
   */
  stopAccepting(): void;
}

/**
 * TLS on one port for HTTP/2 and HTTP/1.1 (ALPN `h2`, `http/1.1`; a client without ALPN gets
 * HTTP/1.1): TLS 1.2 and 1.3 only, the certificate chosen by the store from the SNI. There is
 * no default certificate: no SNI, or a name the store refuses, fails the handshake. An `h2`
 * connection goes to an HTTP/2 server (through `emit('connection')`, as Node's secure server
 * does itself), anything else to `http1`, the relay that serves plain HTTP/1.1 too.
 */
export function createTlsListener(options: TlsListenerOptions): Listener<TlsServer> {
  const limits = { ...defaultGuardLimits, ...pickLimits(options) };
  const guard = new ConnectionGuard('tls', limits, options.metrics, options.logger);
  const h2 = http2Server(options.http2, options.http2Options);
  const server = createTlsServer({
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.3',
    ALPNProtocols: ['h2', 'http/1.1'],
    SNICallback: options.store.sniCallback,
    handshakeTimeout: options.handshakeTimeoutMs ?? 10_000,
  });
  server.maxConnections = options.connectionsMax ?? 10_000;
  // 'connection' gives the raw TCP socket before TLS wraps it (the guard reads its byte
  // counters); 'secureConnection' gives the TLS socket. They are matched by remote endpoint,
  // unique among this port's open connections.
  const handshaking = new Map<string, ReturnType<ConnectionGuard['watch']>>();
  const endpoint = (socket: Socket) => `${socket.remoteAddress}|${socket.remotePort}`;
  server.on('connection', (raw: Socket) => {
    const key = endpoint(raw);
    handshaking.set(key, guard.watch(raw));
    raw.once('close', () => handshaking.delete(key));
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    const key = endpoint(socket);
    const watched = handshaking.get(key);
    handshaking.delete(key);
    if (watched !== undefined) guard.attach(watched, socket);
    if (socket.alpnProtocol === 'h2') {
      socket.setNoDelay(true); // frames of many streams: never held back by Nagle
      h2.emit('connection', socket);
    } else options.http1(socket);
  });
  server.on('tlsClientError', (error: NodeJS.ErrnoException) => {
    const code = error.code ?? 'unknown';
    options.metrics.handshakeErrors.add(1, { code });
    if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') guard.counted('handshake_timeout');
  });
  return listener(server, guard, [h2]);
}

const h2Preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * Cleartext HTTP/1.1 and h2c with prior knowledge on one port. Node's http2 `createServer`
 * speaks only h2c, so the first bytes are read off the raw socket: the HTTP/2 connection
 * preface goes to an h2c server (through `emit('connection')`), anything else to `http1`, each
 * with the bytes read pushed back. `Upgrade: h2c` is not supported (the relay sees a plain
 * HTTP/1.1 request).
 */
export function createPlainListener(options: PlainListenerOptions): Listener<NetServer> {
  const limits = { ...defaultGuardLimits, ...pickLimits(options) };
  const guard = new ConnectionGuard('plain', limits, options.metrics, options.logger);
  const h2c = http2Server(options.http2, options.http2Options);
  const sniffTimeoutMs = options.sniffTimeoutMs ?? 10_000;
  const server = createNetServer((socket) => {
    guard.watch(socket);
    sniff(
      socket,
      sniffTimeoutMs,
      (isH2) => {
        if (isH2) {
          socket.setNoDelay(true); // frames of many streams: never held back by Nagle
          h2c.emit('connection', socket);
        } else options.http1(socket);
      },
      () => guard.counted('sniff_timeout'),
    );
  });
  server.maxConnections = options.connectionsMax ?? 10_000;
  return listener(server, guard, [h2c]);
}

/** Reads until the bytes are or are not the HTTP/2 preface, then pushes them back. */
function sniff(
  socket: Socket,
  timeoutMs: number,
  decided: (isH2: boolean) => void,
  timedOut: () => void,
): void {
  let seen: Buffer = Buffer.alloc(0);
  const timer = setTimeout(() => {
    done();
    timedOut();
    socket.destroy();
  }, timeoutMs);
  const done = () => {
    clearTimeout(timer);
    socket.off('readable', onReadable);
    socket.off('end', onEnd);
  };
  const onEnd = () => {
    done();
    socket.destroy();
  };
  const onReadable = () => {
    for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read()) {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    }
    const compared = Math.min(seen.length, h2Preface.length);
    const prefix = seen.subarray(0, compared).equals(h2Preface.subarray(0, compared));
    if (prefix && seen.length < h2Preface.length) return; // not enough bytes to tell yet
    done();
    socket.unshift(seen);
    decided(prefix);
  };
  socket.on('readable', onReadable);
  socket.once('end', onEnd);
}

/** An HTTP/2 server without a listener socket of its own: connections are handed to it. */
function http2Server(handler: StreamHandler, options: ServerOptions | undefined): Http2Server {
  const server = createH2cServer(options ?? {});
  server.on('stream', handler);
  return server;
}

function pickLimits(options: Partial<GuardLimits>): Partial<GuardLimits> {
  const picked: Partial<GuardLimits> = {};
  if (options.idleTimeoutMs !== undefined) picked.idleTimeoutMs = options.idleTimeoutMs;
  if (options.sweepIntervalMs !== undefined) picked.sweepIntervalMs = options.sweepIntervalMs;
  if (options.wakeupsWithoutProgressMax !== undefined) {
    picked.wakeupsWithoutProgressMax = options.wakeupsWithoutProgressMax;
  }
  return picked;
}

function listener<S extends NetServer>(
  server: S,
  guard: ConnectionGuard,
  inner: Http2Server[] = [],
): Listener<S> {
  const sessions = new Set<ServerHttp2Session>();
  let draining = false;
  for (const each of inner) {
    each.on('session', (session: ServerHttp2Session) => {
      if (draining) {
        session.close(); // GOAWAY at once: the client opens its next streams elsewhere
        return;
      }
      sessions.add(session);
      session.once('close', () => sessions.delete(session));
    });
  }
  return {
    server,
    guard,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const bound = server.address();
          if (bound === null || typeof bound === 'string') {
            reject(new Error('listener has no port'));
            return;
          }
          resolve({ address: bound.address, port: bound.port });
        });
      }),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        guard.close();
        for (const each of inner) each.close();
      }),
    stopAccepting: () => {
      if (draining) return;
      draining = true;
      if (server.listening) server.close();
      for (const session of sessions) session.close();
      sessions.clear();
    },
  };
}
