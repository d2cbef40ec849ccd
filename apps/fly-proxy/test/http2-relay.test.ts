import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import {
  type ClientHttp2Session,
  connect as connectH2,
  type OutgoingHttpHeaders,
} from 'node:http2';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Edge, listening, raw, startEdge } from './relay-fixture.js';

interface Answer {
  status: number;
  headers: Record<string, unknown>;
  body: Buffer;
}

/** One h2 request; `body` is written in pieces (no content-length unless given). */
function h2Request(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders,
  body?: Buffer[],
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let status = 0;
    let seen: Record<string, unknown> = {};
    stream.on('response', (answer) => {
      status = Number(answer[':status']);
      seen = answer;
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve({ status, headers: seen, body: Buffer.concat(chunks) }));
    stream.on('error', reject);
    if (body !== undefined) {
      for (const piece of body) stream.write(piece);
      stream.end();
    }
  });
}

// HTTP/2 requests (h2c here; h2 over TLS in tls-proxy.test.ts) go through the same exchanges
// and per-machine HTTP/1.1 pools as HTTP/1.1 requests: a real edge process, a real machine.
describe('fly-proxy HTTP/2 front on the raw pools', () => {
  let edge: Edge;
  let machine: Server;
  let session: ClientHttp2Session;
  let releaseStream: () => void = () => {};

  beforeAll(async () => {
    const started = await listening(
      createServer((req, res) => {
        if (req.url === '/stream') {
          // Streaming: the first piece must reach the client before the machine ends.
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write('first;');
          releaseStream = () => res.end('second');
          return;
        }
        if (req.url === '/large') {
          const size = 8 * 1024 * 1024;
          res.writeHead(200, { 'content-length': size });
          res.end(Buffer.alloc(size, 7));
          return;
        }
        const hash = createHash('sha256');
        let bytes = 0;
        req.on('data', (chunk: Buffer) => {
          hash.update(chunk);
          bytes += chunk.length;
        });
        req.on('end', () => {
          res.setHeader('content-type', 'application/json');
          res.end(
            JSON.stringify({
              bytes,
              sha256: hash.digest('hex'),
              headers: req.headers,
              method: req.method,
              url: req.url,
            }),
          );
        });
      }),
    );
    machine = started.server;
    edge = await startEdge([{ id: 'h2m', app: 'web', addr: started.addr, region: 'ams' }], {
      region: 'ams',
    });
    await edge.routable('web.fleet.test');
    session = connectH2(edge.urls.proxy);
    session.on('error', () => {});
  });

  afterAll(async () => {
    session?.close();
    await edge?.stop();
    await new Promise((resolve) => machine?.close(resolve));
  });

  it('relays a large request body of unknown length chunked, and a large answer', async () => {
    const pieces = Array.from({ length: 40 }, () => randomBytes(128 * 1024));
    const expected = createHash('sha256');
    for (const piece of pieces) expected.update(piece);
    const answer = await h2Request(
      session,
      { ':method': 'POST', ':path': '/upload', ':authority': 'web.fleet.test' },
      pieces,
    );
    expect(answer.status).toBe(200);
    expect(answer.headers['fly-request-id']).toBeTruthy();
    const seen = JSON.parse(answer.body.toString());
    expect(seen.bytes).toBe(40 * 128 * 1024);
    expect(seen.sha256).toBe(expected.digest('hex'));
    expect(seen.headers['transfer-encoding']).toBe('chunked');
    expect(seen.headers.via).toBe('2 fly.io');
    expect(seen.headers.host).toBe('web.fleet.test');
    expect(seen.headers['fly-forwarded-port']).toBeTruthy();

    const large = await h2Request(session, { ':path': '/large', ':authority': 'web.fleet.test' });
    expect(large.status).toBe(200);
    expect(large.body.length).toBe(8 * 1024 * 1024);
    expect(large.body.every((byte) => byte === 7)).toBe(true);
  });

  it('keeps a declared content-length and sends it as the machine expects', async () => {
    const body = Buffer.from('x'.repeat(1000));
    const answer = await h2Request(
      session,
      {
        ':method': 'PUT',
        ':path': '/sized',
        ':authority': 'web.fleet.test',
        'content-length': body.length,
      },
      [body],
    );
    const seen = JSON.parse(answer.body.toString());
    expect(seen.bytes).toBe(1000);
    expect(seen.headers['content-length']).toBe('1000');
    expect(seen.headers['transfer-encoding']).toBeUndefined();
  });

  it('streams an answer piece by piece, not buffered to its end', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const stream = session.request({ ':path': '/stream', ':authority': 'web.fleet.test' });
      let seen = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        seen += chunk;
        if (seen === 'first;') releaseStream(); // the machine ends only after this arrived
      });
      stream.on('end', () => resolve(seen));
      stream.on('error', reject);
    });
    expect(text).toBe('first;second');
  });

  it("answers the proxy's own errors as JSON over h2, and many streams share the pool", async () => {
    const unknown = await h2Request(session, { ':path': '/', ':authority': 'nope.fleet.test' });
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body.toString()).code).toBe('PROXY_ERR_NO_APP');
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, index) =>
        h2Request(session, { ':path': `/many/${index}`, ':authority': 'web.fleet.test' }),
      ),
    );
    expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 200));
    expect(new Set(answers.map((answer) => JSON.parse(answer.body.toString()).url)).size).toBe(100);
  });

  it('bounds request heads as HTTP/1.1 does: 431 over the bound, a reset far over it, counted', async () => {
    // The default bound is 64 KiB: 70 KB of headers get the proxy's 431 (and the session lives
    // on), 200 KB are reset by Node before the relay sees them (ENHANCE_YOUR_CALM, code 11).
    // Fields stay under 64 KB each: nghttp2 refuses a larger single field on both ends.
    const large = connectH2(edge.urls.proxy, { maxSendHeaderBlockLength: 1 << 20 });
    large.on('error', () => {});
    try {
      const fields = (count: number) =>
        Object.fromEntries(
          Array.from({ length: count }, (_, index) => [`x-large-${index}`, 'a'.repeat(50_000)]),
        );
      const tooLarge = await h2Request(large, {
        ':path': '/',
        ':authority': 'web.fleet.test',
        ...fields(2),
      });
      expect(tooLarge.status).toBe(431);
      expect(JSON.parse(tooLarge.body.toString()).code).toBe('PROXY_ERR_HEADERS_TOO_LARGE');
      const many = Object.fromEntries(
        Array.from({ length: 500 }, (_, index) => [`x-field-${index}`, 'v']),
      );
      const manyFields = await h2Request(large, {
        ':path': '/fields',
        ':authority': 'web.fleet.test',
        ...many,
      });
      expect(manyFields.status).toBe(200); // 500 small fields (Node's own bound is 128): under the bound in bytes
      expect(JSON.parse(manyFields.body.toString()).headers['x-field-499']).toBe('v');
      const reset = await new Promise<number>((resolve) => {
        const stream = large.request({
          ':path': '/',
          ':authority': 'web.fleet.test',
          ...fields(4),
        });
        stream.on('error', () => {});
        stream.on('close', () => resolve(stream.rstCode ?? -1));
        stream.resume();
      });
      expect(reset).toBe(11);
      const after = await h2Request(large, { ':path': '/after', ':authority': 'web.fleet.test' });
      expect(after.status).toBe(200);
    } finally {
      large.close();
    }

    // The HTTP/1.1 relay's 431 is counted in the same series.
    const http1 = await raw(
      edge.urls.proxy,
      `GET / HTTP/1.1\r\nHost: web.fleet.test\r\nX-Large: ${'a'.repeat(70_000)}\r\n\r\n`,
    );
    expect(http1).toMatch(/^HTTP\/1\.1 431 /);
    const metrics = await (await request(`${edge.proxy.urls.admin}/metrics`)).body.text();
    expect(metrics).toMatch(/proxy_requests_total\{app="",status="431"[^}]*\} 2\b/);
  });
});
