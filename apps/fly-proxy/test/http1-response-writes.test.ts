import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Edge, raw, startEdge } from './relay-fixture.js';

/** Body bytes of `/size/<n>`: a pattern that shows any byte lost, doubled or moved. */
function bodyOf(size: number): Buffer {
  const body = Buffer.alloc(size);
  for (let index = 0; index < size; index += 1) body[index] = 32 + (index % 91);
  return body;
}

/**
 * A machine on a raw socket that writes each whole response (head and body) in one write, so the
 * proxy reads the head and the first body bytes together; a header value carries a latin1 byte.
 */
function oneWriteMachine(): Promise<{ server: Server; addr: string }> {
  const server = createNetServer((socket: Socket) => {
    let pending = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      pending += chunk;
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        const path = pending.slice(0, pending.indexOf('\r\n')).split(' ')[1] ?? '/';
        pending = pending.slice(end + 4);
        const size = Number(/^\/size\/(\d+)$/.exec(path)?.[1] ?? 2);
        const head = `HTTP/1.1 200 OK\r\ncontent-length: ${size}\r\nx-name: caf\xe9\r\n\r\n`;
        socket.write(Buffer.concat([Buffer.from(head, 'latin1'), bodyOf(size)]));
      }
    });
    socket.on('error', () => {});
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, addr: `127.0.0.1:${(server.address() as { port: number }).port}` }),
    ),
  );
}

// The relay writes a response head and the body bytes read with it as one buffer (up to 16 KiB
// of body) or corked behind the head (more): a machine answering in one write, at sizes around
// that bound, must reach the client byte for byte, its latin1 header bytes as they were.
describe('fly-proxy HTTP/1.1 response writes', () => {
  let edge: Edge;
  let url: string;
  let machine: Server;

  beforeAll(async () => {
    const started = await oneWriteMachine();
    machine = started.server;
    edge = await startEdge([{ id: 'one1', app: 'one', addr: started.addr, region: 'ams' }], {
      region: 'ams',
    });
    url = edge.proxy.urls.proxy ?? '';
    await edge.routable('one.fleet.test');
  });

  afterAll(async () => {
    await edge?.stop();
    await new Promise((resolve) => machine?.close(resolve));
  });

  it('relays answers the machine wrote in one piece byte for byte, around the join bound', async () => {
    for (const size of [0, 1, 100, 16 * 1024, 16 * 1024 + 1, 300_000]) {
      const answer = await raw(url, `GET /size/${size} HTTP/1.1\r\nHost: one.fleet.test\r\n\r\n`);
      const end = answer.indexOf('\r\n\r\n');
      const head = answer.slice(0, end);
      expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(head).toContain(`content-length: ${size}\r\n`);
      expect(head).toContain('x-name: caf\xe9\r\n');
      expect(head).toMatch(/\r\nfly-request-id: \S+/);
      const body = answer.slice(end + 4);
      expect(body.length).toBe(size);
      expect(body === bodyOf(size).toString('latin1')).toBe(true);
    }
  });
});
