import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { until } from '@fleet/service/vitest-until';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Edge, listening, raw, startEdge, startMachine } from './relay-fixture.js';

const bigBytes = 8 * 1024 * 1024;

/**
 * Opens a connection, sends `bytes`, and reads nothing until `drain()`: the proxy's writes to it
 * back up meanwhile. `drain()` then reads what had arrived until the connection closes or stays
 * quiet for a second, and tells how many bytes came and whether the proxy closed it.
 */
function neverReading(
  port: number,
  bytes: string,
): Promise<Socket & { drain(): Promise<{ bytes: number; closed: boolean }> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(bytes);
      socket.pause();
      let received = 0;
      const drain = () =>
        new Promise<{ bytes: number; closed: boolean }>((done) => {
          let quiet = setTimeout(() => done({ bytes: received, closed: false }), 1_000);
          socket.on('data', (chunk: Buffer) => {
            received += chunk.length;
            clearTimeout(quiet);
            quiet = setTimeout(() => done({ bytes: received, closed: false }), 1_000);
          });
          socket.once('close', () => {
            clearTimeout(quiet);
            done({ bytes: received, closed: true });
          });
          socket.resume();
        });
      resolve(Object.assign(socket, { drain }));
    });
    socket.on('error', () => {}); // a reset is how the proxy cuts it
    socket.once('error', reject);
  });
}

function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve();
    else socket.once('close', () => resolve());
  });
}

// The HTTP/1.1 relay probed as an attacker and a careless client would: every ambiguous request
// refused before it reaches a machine, every slow or silent client cut at its bound, and the
// machine's connections never held hostage; upgrades, chunked bodies and pipelining relayed.
describe('fly-proxy HTTP/1.1 relay under hostile clients', () => {
  let edge: Edge;
  let url: string;
  let port: number;
  const servers: Server[] = [];
  const seen: string[] = []; // request lines the echo machine received
  let bigRequests = 0; // requests the big machine received

  beforeAll(async () => {
    const echo = await startMachine('echo');
    echo.server.on('request', (req) => seen.push(`${req.method} ${req.url}`));
    const big = await listening(
      createServer((_req, res) => {
        bigRequests += 1;
        res.writeHead(200, { 'content-length': bigBytes });
        res.end(Buffer.alloc(bigBytes, 120));
      }),
    );
    const socketServer = createServer((_req, res) => res.end('not an upgrade'));
    socketServer.on('upgrade', (req, socket: Socket, head) => {
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${req.headers.upgrade}\r\n\r\n`,
      );
      if (head.length > 0) socket.write(head);
      socket.pipe(socket); // echo every byte back
    });
    const ws = await listening(socketServer);
    const stale = await listening(
      createServer((req, res) => {
        res.setHeader('content-type', 'text/plain');
        res.end(`stale ${req.url}`);
      }),
    );
    stale.server.keepAliveTimeout = 50; // closes idle connections long before the proxy's pool
    const chunky = await listening(
      createServer((req, res) => {
        res.write('one,');
        setTimeout(() => res.end(`two,${req.headers['x-n'] ?? ''}`), 20);
      }),
    );
    servers.push(echo.server, big.server, ws.server, stale.server, chunky.server);
    edge = await startEdge(
      [
        { id: 'echo1', app: 'echo', addr: echo.addr, region: 'ams' },
        { id: 'big1', app: 'big', addr: big.addr, region: 'ams' },
        { id: 'ws1', app: 'ws', addr: ws.addr, region: 'ams' },
        { id: 'stale1', app: 'stale', addr: stale.addr, region: 'ams' },
        { id: 'chunky1', app: 'chunky', addr: chunky.addr, region: 'ams' },
        {
          id: 'secure1',
          app: 'secure',
          addr: echo.addr,
          region: 'ams',
          ports: [{ port: 80, handlers: ['http'], force_https: true }],
        },
      ],
      {
        region: 'ams',
        args: [
          ...['--connections-per-upstream', '2', '--upstream-wait-timeout-ms', '300'],
          ...['--client-write-timeout-ms', '1500', '--client-headers-timeout-ms', '400'],
          ...['--upstream-idle-timeout-ms', '60000'],
        ],
      },
    );
    url = edge.urls.proxy;
    port = Number(new URL(url).port);
    for (const app of ['echo', 'big', 'ws', 'stale', 'chunky'])
      await edge.routable(`${app}.fleet.test`);
  });

  afterAll(async () => {
    await edge?.stop();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });

  it('refuses request smuggling (CL.TE, TE.CL, two lengths) with 400 before any machine sees it', async () => {
    const attacks = [
      'POST /cl-te HTTP/1.1\r\nHost: echo.fleet.test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG',
      'POST /te-cl HTTP/1.1\r\nHost: echo.fleet.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n',
      'POST /two HTTP/1.1\r\nHost: echo.fleet.test\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: echo.fleet.test\r\n\r\n',
      'POST /te-space HTTP/1.1\r\nHost: echo.fleet.test\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n',
      'GET /fold HTTP/1.1\r\nHost: echo.fleet.test\r\nX-A: a\r\n Transfer-Encoding: chunked\r\n\r\n',
    ];
    for (const attack of attacks) {
      const reply = await raw(url, attack);
      expect(reply, attack).toMatch(/^HTTP\/1\.1 400 /);
      expect(reply).toContain('PROXY_ERR_BAD_REQUEST');
      expect(reply).toContain('connection: close');
    }
    expect(seen.filter((line) => /cl-te|te-cl|two|smuggled|te-space|fold/.test(line))).toEqual([]);
  });

  it('refuses what the machine would have to read its own way: CONNECT, a target that is no path, LF-only lines', async () => {
    const refused: [request: string, why: string][] = [
      [
        'CONNECT echo.fleet.test:80 HTTP/1.1\r\nHost: echo.fleet.test:80\r\n\r\n',
        'CONNECT is not relayed',
      ],
      ['GET nopath HTTP/1.1\r\nHost: echo.fleet.test\r\n\r\n', 'nopath is not a path'],
      ['GET * HTTP/1.1\r\nHost: echo.fleet.test\r\n\r\n', 'for OPTIONS only'],
      // Its head never ends in CRLF CRLF: a 400 at once, not a 408 at the head timeout.
      ['GET /lf HTTP/1.1\nHost: echo.fleet.test\n\n', 'LF alone'],
    ];
    for (const [request, why] of refused) {
      const reply = await raw(url, request);
      expect(reply, request).toMatch(/^HTTP\/1\.1 400 /);
      expect(reply).toContain('PROXY_ERR_BAD_REQUEST');
      expect(reply).toContain(why);
    }
    expect(seen.filter((line) => /nopath|CONNECT|\/lf|^GET \*/.test(line))).toEqual([]);
    const options = await raw(
      url,
      'OPTIONS * HTTP/1.1\r\nHost: echo.fleet.test\r\nConnection: close\r\n\r\n',
    );
    expect(options).toMatch(/^HTTP\/1\.1 200 /);
    expect(seen).toContain('OPTIONS *');
  });

  it('never lets a client Connection header strip the framing of its body', async () => {
    const reply = await raw(
      url,
      'POST /framed HTTP/1.1\r\nHost: echo.fleet.test\r\nConnection: content-length, close\r\nContent-Length: 5\r\n\r\nhello',
    );
    expect(reply).toMatch(/^HTTP\/1\.1 200 /);
    expect(reply).toContain('"body":"hello"');
  });

  it('answers a 64 KB header with 431 and keeps serving', async () => {
    const reply = await raw(
      url,
      `GET / HTTP/1.1\r\nHost: echo.fleet.test\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`,
    );
    expect(reply).toMatch(/^HTTP\/1\.1 431 /);
    expect(reply).toContain('PROXY_ERR_HEADERS_TOO_LARGE');
    const after = await request(url, { headers: { host: 'echo.fleet.test' } });
    expect(after.statusCode).toBe(200);
    await after.body.dump();
  });

  it('answers a slowloris head with 408 at the headers timeout', async () => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk) => {
      reply += chunk;
    });
    socket.write('GET / HTTP/1.1\r\nHost: echo.fleet.test\r\nX-Slow: ');
    const trickle = setInterval(() => socket.write('a'), 50);
    try {
      await closed(socket);
    } finally {
      clearInterval(trickle);
    }
    expect(reply).toMatch(/^HTTP\/1\.1 408 /);
    expect(reply).toContain('PROXY_ERR_CLIENT_TIMEOUT');
  });

  it('keeps clients that never read from holding the machine: others wait a bounded time, readers are cut', async () => {
    // Three clients ask for 8 MB each and never read: the machine has two connections (flag).
    const requestsBefore = bigRequests;
    const slowReadersCut = async () => {
      const status = (await (await request(`${edge.proxy.urls.admin}/status`)).body.json()) as {
        proxy: { http1: { slowReadersCut: number } };
      };
      return status.proxy.http1.slowReadersCut;
    };
    const cutBefore = await slowReadersCut();
    const hogs = await Promise.all(
      [1, 2, 3].map(() => neverReading(port, 'GET / HTTP/1.1\r\nHost: big.fleet.test\r\n\r\n')),
    );
    try {
      await until('two hogs holding the machine', () => bigRequests - requestsBefore >= 2);
      const waited = await request(url, { headers: { host: 'big.fleet.test' } });
      const body = await waited.body.text();
      expect(waited.statusCode).toBe(503);
      expect(JSON.parse(body).code).toBe('PROXY_ERR_MACHINE_BUSY');
      // Past --client-write-timeout-ms every hog is cut, and the machine serves again.
      await until('two hogs cut', async () => (await slowReadersCut()) - cutBefore >= 2);
      const received = await Promise.all(hogs.map((hog) => hog.drain()));
      // Two hogs held the machine's two connections and were cut mid-body; the third waited
      // for a connection, got its 503 and keeps its connection.
      const cut = received.filter((hog) => hog.closed);
      expect(cut).toHaveLength(2);
      for (const hog of cut) expect(hog.bytes).toBeLessThan(bigBytes);
      const served = await request(url, { headers: { host: 'big.fleet.test' } });
      expect(served.statusCode).toBe(200);
      expect((await served.body.arrayBuffer()).byteLength).toBe(bigBytes);
      expect(await slowReadersCut()).toBeGreaterThanOrEqual(2);
    } finally {
      for (const hog of hogs) hog.destroy();
    }
  });

  it('relays a WebSocket upgrade as a tunnel, bytes both ways', async () => {
    const socket = connect(port, '127.0.0.1');
    socket.setEncoding('latin1');
    let reply = '';
    socket.on('data', (chunk) => {
      reply += chunk;
    });
    socket.write(
      'GET /chat HTTP/1.1\r\nHost: ws.fleet.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    const received = (text: string) =>
      until(`${JSON.stringify(text)} from the machine`, () => reply.includes(text));
    try {
      await received('\r\n\r\n');
      expect(reply).toMatch(/^HTTP\/1\.1 101 /);
      expect(reply.toLowerCase()).toContain('upgrade: websocket');
      socket.write('ping-1');
      await received('ping-1');
      socket.write('ping-2');
      await received('ping-2');
    } finally {
      socket.destroy();
    }
  });

  it('sends a request again on a fresh connection when the pooled one was closed by the machine', async () => {
    for (let i = 0; i < 5; i += 1) {
      const answer = await request(`${url}/r${i}`, { headers: { host: 'stale.fleet.test' } });
      expect(answer.statusCode).toBe(200);
      expect(await answer.body.text()).toBe(`stale /r${i}`);
      await new Promise((resolve) => setTimeout(resolve, 120)); // past the machine's keep-alive
    }
  });

  it('relays chunked bodies both ways and answers pipelined requests in order', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      let text = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk) => {
        text += chunk;
        if (text.includes('two,3')) socket.end();
      });
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
      socket.write(
        'POST /c HTTP/1.1\r\nHost: echo.fleet.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n' +
          'GET /1 HTTP/1.1\r\nHost: chunky.fleet.test\r\nX-N: 1\r\n\r\n' +
          'GET /2 HTTP/1.1\r\nHost: chunky.fleet.test\r\nX-N: 2\r\n\r\n' +
          'GET /3 HTTP/1.1\r\nHost: chunky.fleet.test\r\nX-N: 3\r\n\r\n',
      );
    });
    expect(reply).toContain('"body":"abcde"');
    const order = [...reply.matchAll(/two,(\d)/g)].map((match) => match[1]);
    expect(order).toEqual(['1', '2', '3']);
    expect(reply).toMatch(/transfer-encoding: chunked/i);
  });

  it('redirects a plain request to https when the service forces it', async () => {
    const reply = await raw(
      url,
      'GET /a?b=1 HTTP/1.1\r\nHost: secure.fleet.test:8080\r\nConnection: close\r\n\r\n',
    );
    expect(reply).toMatch(/^HTTP\/1\.1 301 /);
    expect(reply).toContain('location: https://secure.fleet.test/a?b=1');
  });

  it('answers thousands of pipelined requests it refuses at once, in order, without exhausting its stack', async () => {
    const count = 3_000;
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      let text = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => {
        text += chunk;
        if (text.split('HTTP/1.1 400 ').length - 1 === count && text.endsWith('}')) socket.end();
      });
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
      socket.setTimeout(20_000, () => socket.destroy());
      socket.write('GET / HTTP/1.1\r\n\r\n'.repeat(count));
    });
    expect(reply.split('HTTP/1.1 400 ').length - 1).toBe(count);
  });

  it('answers an HTTP/1.0 client without chunked framing and closes', async () => {
    const reply = await raw(url, 'GET /old HTTP/1.0\r\nHost: chunky.fleet.test\r\n\r\n');
    expect(reply).toMatch(/^HTTP\/1\.1 200 /);
    expect(reply).not.toMatch(/transfer-encoding/i);
    expect(reply).toContain('connection: close');
    expect(reply).toMatch(/one,two,$/);
  });
});
