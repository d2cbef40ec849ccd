import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { listening } from './relay-fixture.js';

/**
 * A machine that answers `/slow` only when released, anything else at once, and accepts an
 * `Upgrade` as a tunnel echoing every byte back.
 */
export async function startHoldingMachine() {
  const held: (() => void)[] = [];
  const server = createServer((req, res) => {
    const answer = () => {
      res.setHeader('content-type', 'text/plain');
      res.end(`done ${req.url}`);
    };
    if (req.url === '/slow') held.push(answer);
    else answer();
  });
  server.on('upgrade', (req, socket: Socket, head: Buffer) => {
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${req.headers.upgrade}\r\n\r\n`,
    );
    if (head.length > 0) socket.write(head);
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  const started = await listening(server);
  return {
    ...started,
    held: () => held.length,
    release: () => {
      for (const answer of held.splice(0)) answer();
    },
  };
}
