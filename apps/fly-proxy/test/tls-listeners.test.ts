import { connect as connectHttp2 } from 'node:http2';
import { connect as connectTcp, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { connect as connectTls } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetCa } from '../src/tls/ca.js';
import { createPlainListener, createTlsListener, type Listener } from '../src/tls/listeners.js';
import type { CertificateStore } from '../src/tls/store.js';
import {
  type Answerer,
  echo,
  logger,
  memoryStore,
  metrics,
  nodeHttp1,
  nodeHttp2,
  pingUntilClosed,
} from './tls-fixture.js';

const guardLimits = { idleTimeoutMs: 400, sweepIntervalMs: 50, wakeupsWithoutProgressMax: 6 };

/** Resolves when the socket closes; rejects past `timeoutMs`. */
function closed(socket: Socket | Duplex): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return resolve();
    // A bound for a hung test only, far above the guard's limits: what cut the connection is
    // proven by the guard's counter of that cause, never by how long it took on a shared machine.
    const timer = setTimeout(() => reject(new Error('still open after 15 s')), 15_000);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Sends raw bytes on the plain port and reads until the server closes or the reply ends. */
function rawExchange(port: number, chunks: string[], gapMs = 5): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp(port, '127.0.0.1');
    let reply = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      reply += chunk;
      if (reply.includes('\r\n\r\n') && /\r\n\r\n[\s\S]*\S/.test(reply)) socket.end();
    });
    socket.on('close', () => resolve(reply));
    socket.on('error', reject);
    socket.once('connect', async () => {
      for (const chunk of chunks) {
        socket.write(chunk);
        await new Promise((wait) => setTimeout(wait, gapMs));
      }
    });
  });
}

// The plain port serves HTTP/1.1 and h2c with prior knowledge side by side, told apart by the
// first bytes; TLS and plain connections that are open but make no progress are cut by the
// guard (seed 000) instead of being kept, and polled, forever.
describe('listeners', () => {
  let ca: FleetCa;
  let store: CertificateStore;
  let plain: Listener<import('node:net').Server>;
  let plainPort: number;
  let tls: Listener<import('node:tls').Server>;
  let tlsPort: number;

  beforeAll(async () => {
    ca = (await FleetCa.generate()).ca;
    store = memoryStore(ca).store;
    plain = createPlainListener({
      http2: nodeHttp2(echo),
      http1: nodeHttp1(echo),
      logger,
      metrics,
      ...guardLimits,
    });
    plainPort = (await plain.listen(0, '127.0.0.1')).port;
    tls = createTlsListener({
      store,
      http2: nodeHttp2(echo),
      http1: nodeHttp1(echo),
      logger,
      metrics,
      handshakeTimeoutMs: 300,
      ...guardLimits,
    });
    tlsPort = (await tls.listen(0, '127.0.0.1')).port;
  });

  afterAll(async () => {
    await plain?.close();
    await tls?.close();
  });

  it('serves h2c with prior knowledge and HTTP/1.1 on the same plain port', async () => {
    const session = connectHttp2(`http://127.0.0.1:${plainPort}`);
    const body = await new Promise<string>((resolve, reject) => {
      const stream = session.request({ ':path': '/h2c', ':authority': 'web.fleet.test' });
      let text = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        text += chunk;
      });
      stream.on('end', () => resolve(text));
      stream.on('error', reject);
      stream.end();
    });
    session.close();
    expect(body).toBe('2.0 web.fleet.test /h2c');
    const h1 = await rawExchange(plainPort, [
      'GET /h1 HTTP/1.1\r\nHost: web.fleet.test\r\nConnection: close\r\n\r\n',
    ]);
    expect(h1).toMatch(/^HTTP\/1\.1 200/);
    expect(h1).toContain('1.1 web.fleet.test /h1');
  });

  it('tells the protocols apart from bytes that arrive one at a time', async () => {
    // "PR" starts like the h2 preface, "PROPFIND" then is HTTP/1.1.
    const request = 'PROPFIND /dav HTTP/1.1\r\nHost: web.fleet.test\r\nConnection: close\r\n\r\n';
    const reply = await rawExchange(plainPort, [...request.slice(0, 12)].concat(request.slice(12)));
    expect(reply).toContain('1.1 web.fleet.test /dav');
  });

  it('leaves alone connections that make progress: steady requests, and a slow answer', async () => {
    const slowHandler: Answerer = ({ path }) =>
      path === '/slow' ? new Promise((resolve) => setTimeout(() => resolve('late'), 900)) : 'ok';
    const slow = createPlainListener({
      http2: nodeHttp2(slowHandler),
      http1: nodeHttp1(slowHandler),
      logger,
      metrics,
      ...guardLimits,
    });
    const { port } = await slow.listen(0, '127.0.0.1');
    try {
      const session = connectHttp2(`http://127.0.0.1:${port}`);
      const get = (path: string) =>
        new Promise<string>((resolve, reject) => {
          const stream = session.request({ ':path': path });
          let text = '';
          stream.setEncoding('utf8');
          stream.on('data', (chunk: string) => {
            text += chunk;
          });
          stream.on('end', () => resolve(text));
          stream.on('error', reject);
          stream.end();
        });
      // Kept up until the guard has swept as often as it takes to cut a connection silent for
      // the idle timeout, or one waking it without progress: it looked, and left this one alone
      // (sweeps never come early, so that many also span the idle timeout).
      const sweepsToCut =
        Math.ceil(guardLimits.idleTimeoutMs / guardLimits.sweepIntervalMs) +
        guardLimits.wakeupsWithoutProgressMax;
      const sweepsBefore = slow.guard.stats().sweeps;
      expect(await get('/slow')).toBe('late');
      do {
        expect(await get('/steady')).toBe('ok');
        await new Promise((resolve) => setTimeout(resolve, 40)); // steady, not back to back
      } while (slow.guard.stats().sweeps - sweepsBefore < sweepsToCut);
      expect(session.closed).toBe(false);
      session.close();
      expect(slow.guard.stats().closed).toEqual({});
    } finally {
      await slow.close();
    }
  });

  it('cuts a TLS handshake that does not finish in time', async () => {
    const before = tls.guard.stats().closed.handshake_timeout ?? 0;
    const socket = connectTcp(tlsPort, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(Buffer.from([0x16, 0x03, 0x01])); // the start of a ClientHello, then nothing
    await closed(socket);
    expect(tls.guard.stats().closed.handshake_timeout).toBe(before + 1);
  });

  it('cuts a TLS connection that stays silent after its handshake', async () => {
    const before = tls.guard.stats().closed.idle ?? 0;
    const socket = connectTls({
      host: '127.0.0.1',
      port: tlsPort,
      servername: 'web.fleet.test',
      ca: ca.certPem,
    });
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    await closed(socket);
    expect(tls.guard.stats().closed.idle).toBe(before + 1);
  });

  it('cuts an h2 session that keeps sending frames (PINGs) that start no request', async () => {
    const before = tls.guard.stats().closed.no_progress ?? 0;
    await pingUntilClosed(
      connectHttp2(`https://127.0.0.1:${tlsPort}`, {
        ca: ca.certPem,
        servername: 'web.fleet.test',
      }),
    );
    expect(tls.guard.stats().closed.no_progress).toBe(before + 1);
    expect(tls.guard.stats().wakeupsWithoutProgress).toBeGreaterThanOrEqual(6);
  });

  it('cuts an h2c session on the plain port that sends only PINGs', async () => {
    const before = plain.guard.stats().closed.no_progress ?? 0;
    await pingUntilClosed(connectHttp2(`http://127.0.0.1:${plainPort}`));
    expect(plain.guard.stats().closed.no_progress).toBe(before + 1);
  });

  it('cuts a plain connection that trickles bytes that never make a request', async () => {
    const before = plain.guard.stats().closed.no_progress ?? 0;
    const socket = connectTcp(plainPort, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('GET /slow HTTP/1.1\r\nHost: web.fleet.test\r\n');
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write('x');
    }, 20);
    try {
      await closed(socket);
    } finally {
      clearInterval(trickle);
    }
    expect(plain.guard.stats().closed.no_progress).toBe(before + 1);
  });

  it('seed 000: close_notify with bytes still buffered and the TCP left open costs no CPU and is cut', async () => {
    // The client's TLS layer sends close_notify after a partial request, but the TCP connection
    // under it stays open (its end is swallowed), the corner that spun fly-proxy's TlsStream.
    const raw = connectTcp(tlsPort, '127.0.0.1');
    raw.on('error', () => {});
    await new Promise((resolve) => raw.once('connect', resolve));
    const keepOpen = new Duplex({
      read() {},
      write(chunk, _encoding, done) {
        raw.write(chunk, done);
      },
      final(done) {
        done(); // swallow the end: no FIN
      },
    });
    raw.on('data', (chunk) => keepOpen.push(chunk));
    raw.on('close', () => keepOpen.push(null));
    const client = connectTls({ socket: keepOpen, servername: 'web.fleet.test', ca: ca.certPem });
    client.on('error', () => {});
    await new Promise((resolve) => client.once('secureConnect', resolve));
    client.write(
      'POST /upload HTTP/1.1\r\nHost: web.fleet.test\r\nContent-Length: 100000\r\n\r\npartial',
    );
    client.end(); // close_notify
    const cpuBefore = process.cpuUsage();
    const startedAt = Date.now();
    await closed(raw);
    const elapsedMs = Date.now() - startedAt;
    const cpu = process.cpuUsage(cpuBefore);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    // Node's TLS answers close_notify by closing (in milliseconds); were it to keep the stream
    // "ready" instead, the guard would cut it. Busy-looping would burn about as much CPU as wall
    // time; an idle wait burns almost none.
    expect(cpuMs).toBeLessThan(Math.max(100, elapsedMs * 0.5));
  });

  it('never serves a connection without SNI, even on a listener with certificates', async () => {
    await expect(
      new Promise((resolve, reject) => {
        const socket = connectTls({ host: '127.0.0.1', port: tlsPort, rejectUnauthorized: false });
        socket.once('secureConnect', () => {
          socket.end();
          resolve('connected');
        });
        socket.once('error', reject);
      }),
    ).rejects.toThrow();
  });
});
