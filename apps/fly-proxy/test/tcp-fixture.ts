import { connect, createServer, type Server, type Socket } from 'node:net';
import { until } from '@fleet/service/vitest-until';

/** A raw TCP machine: echoes every byte, and remembers the first bytes of each connection. */
export async function tcpMachine(): Promise<{
  server: Server;
  addr: string;
  firstBytes: Buffer[];
}> {
  const firstBytes: Buffer[] = [];
  const server = createServer((socket) => {
    socket.once('data', (chunk: Buffer) => firstBytes.push(chunk));
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, addr: `127.0.0.1:${(server.address() as { port: number }).port}`, firstBytes };
}

/** Connects to a public port (retrying while the proxy opens it), sends `text`, reads it back. */
export async function echoThrough(port: number, text: string): Promise<string> {
  return until(`port ${port} echoing`, async () => {
    const socket = await new Promise<Socket | undefined>((resolve) => {
      const attempt = connect(port, '127.0.0.1', () => resolve(attempt));
      attempt.once('error', () => resolve(undefined));
    });
    if (socket !== undefined) {
      const reply = await new Promise<string>((resolve) => {
        let seen = '';
        socket.setEncoding('latin1');
        socket.on('data', (chunk: string) => {
          seen += chunk;
          if (seen.includes(text)) socket.end();
        });
        socket.on('close', () => resolve(seen));
        socket.on('error', () => resolve(seen));
        socket.write(text);
      });
      if (reply.includes(text)) return reply;
    }
    return undefined;
  });
}
