import { mkdtempSync } from 'node:fs';
import {
  createServer as createHttp1Server,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { ClientHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ConnectionOptions, connect, type DetailedPeerCertificate } from 'node:tls';
import { CorrosionClient } from '@fleet/corrosion-client';
import { createLogger, type ServerProcess, serverMain, startServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import type { FleetCa } from '../src/tls/ca.js';
import {
  type CertificateRow,
  type CertificateSource,
  corrosionAppResolver,
  corrosionCertificates,
} from '../src/tls/certificate-source.js';
import { watchedOf } from '../src/tls/guard.js';
import { createTlsListener, type StreamHandler } from '../src/tls/listeners.js';
import { tlsMetrics } from '../src/tls/metrics.js';
import { CertificateStore, type CertificateStoreOptions } from '../src/tls/store.js';

const corrosionMain = serverMain('@fleet/corrosion');

export const fleetKey = Buffer.from('test-fleet-key-0123456789abcdef');
process.env.LOG_LEVEL ??= 'error';
export const logger = createLogger('fly-proxy-test');
export const metrics = tlsMetrics();

/** A real corrosion agent on an ephemeral port, and a client of it. */
export async function startCorrosion(): Promise<{ agent: ServerProcess; client: CorrosionClient }> {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-tls-'));
  const agent = await startServerProcess({
    command: process.execPath,
    args: [corrosionMain, 'agent', '--db', join(dir, 'c.db'), '--api-addr', '127.0.0.1:0'],
    listeners: ['api'],
    env: { ...process.env, LOG_LEVEL: 'warn' },
  });
  return {
    agent,
    client: new CorrosionClient({ url: present(agent.urls.api, "the agent's API URL") }),
  };
}

/** A certificate store over corrosion, as an edge builds it; `source` counts issuance writes. */
export function corrosionStore(
  client: CorrosionClient,
  ca: FleetCa,
  options: Partial<CertificateStoreOptions> = {},
): { store: CertificateStore; saves: () => number } {
  const direct = corrosionCertificates(client);
  let saves = 0;
  const source: CertificateSource = {
    lookup: (hostname) => direct.lookup(hostname),
    save: (row) => {
      saves += 1;
      return direct.save(row);
    },
  };
  const store = new CertificateStore({
    source,
    resolveApp: corrosionAppResolver(client, { domain: 'fleet.test', cacheTtlMs: 0 }),
    ca,
    fleetKey,
    logger,
    metrics,
    ...options,
  });
  return { store, saves: () => saves };
}

/** A test server's answer (text/plain) to a request, over HTTP/1.1 or HTTP/2 alike. */
export type Answerer = (request: {
  version: string;
  authority: string | undefined;
  path: string;
}) => string | Promise<string>;

/** Answers with what the relay would read: protocol version, authority and path. */
export const echo: Answerer = ({ version, authority, path }) => `${version} ${authority} ${path}`;

/** Counts a request for the guard while it is in flight, as the proxy's relay does. */
function tracked(socket: unknown, closed: { once(event: 'close', done: () => void): unknown }) {
  const watched = watchedOf(socket);
  if (watched === undefined) return;
  watched.requestsStarted += 1;
  watched.requestsInFlight += 1;
  closed.once('close', () => {
    watched.requestsInFlight -= 1;
  });
}

/** The HTTP/1 side of a listener under test: Node's HTTP/1.1 server answering with `answer`. */
export function nodeHttp1(answer: Answerer): (socket: Socket) => void {
  const server = createHttp1Server((request: IncomingMessage, response: ServerResponse) => {
    tracked(request.socket, response);
    const path = request.url ?? '/';
    void Promise.resolve(
      answer({ version: request.httpVersion, authority: request.headers.host, path }),
    ).then((text) => {
      response.setHeader('content-type', 'text/plain');
      response.end(text);
    });
  });
  return (socket) => server.emit('connection', socket);
}

/** The HTTP/2 side of a listener under test: each stream answered with `answer`. */
export function nodeHttp2(answer: Answerer): StreamHandler {
  return (stream, headers) => {
    tracked(stream.session?.socket, stream);
    stream.on('error', () => {});
    stream.resume();
    const request = {
      version: '2.0',
      authority: headers[':authority'],
      path: headers[':path'] ?? '/',
    };
    void Promise.resolve(answer(request)).then((text) => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end(text);
    });
  };
}

/** A TLS listener with the store on 127.0.0.1, port 0. */
export async function tlsEdge(store: CertificateStore, extra: Record<string, number> = {}) {
  const listener = createTlsListener({
    store,
    http2: nodeHttp2(echo),
    http1: nodeHttp1(echo),
    logger,
    metrics,
    ...extra,
  });
  const { port } = await listener.listen(0, '127.0.0.1');
  return { listener, port };
}

export interface Handshake {
  authorized: boolean;
  authorizationError?: string;
  certificate: DetailedPeerCertificate;
  alpn: string | false | null;
  protocol: string | null;
}

/** One TLS handshake; resolves with what the client saw, rejects when it failed. */
export function handshake(
  port: number,
  servername: string | undefined,
  options: ConnectionOptions = {},
): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: '127.0.0.1',
      port,
      servername,
      rejectUnauthorized: false,
      ...options,
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error('handshake timed out in the test')));
    socket.once('secureConnect', () => {
      const seen: Handshake = {
        authorized: socket.authorized,
        authorizationError: socket.authorizationError?.message,
        certificate: socket.getPeerCertificate(true),
        alpn: socket.alpnProtocol,
        protocol: socket.getProtocol(),
      };
      socket.end();
      resolve(seen);
    });
    socket.once('error', reject);
  });
}

/**
 * A certificate store over an in-memory source (the rows map), for names under `.fleet.test`,
 * which all belong to the app `web`.
 */
export function memoryStore(ca: FleetCa, options: Partial<CertificateStoreOptions> = {}) {
  const rows = new Map<string, CertificateRow>();
  const store = new CertificateStore({
    source: {
      lookup: async (hostname) => rows.get(hostname),
      save: async (row) => {
        rows.set(row.hostname, row);
      },
    },
    resolveApp: async (name) => (name.endsWith('.fleet.test') ? 'web' : undefined),
    ca,
    fleetKey,
    logger,
    metrics,
    ...options,
  });
  return { store, rows };
}

/** Sends PINGs on an h2 session every 20 ms until the server closes it (within 5 s, or fails). */
export async function pingUntilClosed(session: ClientHttp2Session): Promise<void> {
  session.on('error', () => {});
  const pinging = setInterval(() => {
    if (!session.destroyed && !session.closed) session.ping(() => {});
  }, 20);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('session still open')), 5_000);
      session.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  } finally {
    clearInterval(pinging);
  }
}
