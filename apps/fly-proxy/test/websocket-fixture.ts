import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { ClientHttp2Session } from 'node:http2';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** WebSocket opcodes used here (RFC 6455 §5.2). */
export const opcodes = { text: 1, binary: 2, close: 8 } as const;

export interface Frame {
  opcode: number;
  payload: Buffer;
}

/** One frame, FIN set; masked as a client must mask, unmasked as a server sends. */
export function encodeFrame(opcode: number, payload: Buffer, masked: boolean): Buffer {
  const length = payload.length;
  const lengthBytes = length < 126 ? 0 : length < 65_536 ? 2 : 8;
  const head = Buffer.alloc(2 + lengthBytes + (masked ? 4 : 0));
  head[0] = 0x80 | opcode;
  head[1] = (masked ? 0x80 : 0) | (length < 126 ? length : length < 65_536 ? 126 : 127);
  if (lengthBytes === 2) head.writeUInt16BE(length, 2);
  if (lengthBytes === 8) head.writeBigUInt64BE(BigInt(length), 2);
  if (!masked) return Buffer.concat([head, payload]);
  const mask = randomBytes(4);
  mask.copy(head, 2 + lengthBytes);
  const body = Buffer.from(payload);
  for (let index = 0; index < body.length; index += 1)
    body.writeUInt8(body.readUInt8(index) ^ mask.readUInt8(index % 4), index);
  return Buffer.concat([head, body]);
}

/** Reads frames off a byte stream, however the bytes are cut; `masked` says whether they were. */
export class FrameReader {
  #buffer = Buffer.alloc(0);

  push(chunk: Buffer): { frame: Frame; masked: boolean }[] {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    const frames: { frame: Frame; masked: boolean }[] = [];
    for (;;) {
      const buffer = this.#buffer;
      if (buffer.length < 2) return frames;
      const masked = (buffer.readUInt8(1) & 0x80) !== 0;
      let length = buffer.readUInt8(1) & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (buffer.length < 4) return frames;
        length = buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (buffer.length < 10) return frames;
        length = Number(buffer.readBigUInt64BE(2));
        offset = 10;
      }
      const maskOffset = offset;
      if (masked) offset += 4;
      if (buffer.length < offset + length) return frames;
      const payload = Buffer.from(buffer.subarray(offset, offset + length));
      if (masked)
        for (let index = 0; index < length; index += 1)
          payload.writeUInt8(
            payload.readUInt8(index) ^ buffer.readUInt8(maskOffset + (index % 4)),
            index,
          );
      frames.push({ frame: { opcode: buffer.readUInt8(0) & 0x0f, payload }, masked });
      this.#buffer = buffer.subarray(offset + length);
    }
  }
}

export function acceptOf(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

export interface WebsocketMachine {
  server: Server;
  addr: string;
  /** Sockets of tunnels the machine saw close, by path. */
  closedPaths: string[];
}

/**
 * A machine speaking WebSocket over HTTP/1.1 Upgrade (RFC 6455): it checks the handshake, sends
 * first a text frame with the request's headers as JSON, then echoes every message; a close frame
 * is answered with one and the connection ended. Paths change that: `/refuse` answers 403,
 * `/bad-accept` a wrong accept, `/reset` resets the connection on the message `reset`.
 */
export async function startWebsocketMachine(): Promise<WebsocketMachine> {
  const closedPaths: string[] = [];
  const server = createServer((_req, res) => res.end('not a websocket'));
  server.on('upgrade', (req, socket: Socket) => {
    const path = req.url ?? '/';
    socket.on('error', () => {});
    socket.on('close', () => closedPaths.push(path));
    socket.on('end', () => socket.end()); // the proxy closed its side: so does the machine
    const key = req.headers['sec-websocket-key'];
    if (path === '/refuse' || typeof key !== 'string' || req.headers.upgrade !== 'websocket') {
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 7\r\n\r\nrefused');
      return;
    }
    const accept = path === '/bad-accept' ? acceptOf('another key') : acceptOf(key);
    const protocol = req.headers['sec-websocket-protocol']?.split(',')[0]?.trim();
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        `Sec-WebSocket-Accept: ${accept}\r\n` +
        `${protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : ''}\r\n`,
    );
    socket.write(encodeFrame(opcodes.text, Buffer.from(JSON.stringify(req.headers)), false));
    const reader = new FrameReader();
    socket.on('data', (chunk: Buffer) => {
      for (const { frame, masked } of reader.push(chunk)) {
        if (!masked) {
          socket.destroy(); // RFC 6455 §5.1: a client frame must be masked
          return;
        }
        // A reset right after a write reaches the reader as a clean end (Linux): reset alone.
        if (path === '/reset' && frame.payload.toString() === 'reset') {
          socket.resetAndDestroy();
          return;
        }
        socket.write(encodeFrame(frame.opcode, frame.payload, false));
        if (frame.opcode === opcodes.close) socket.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { server, addr: `127.0.0.1:${port}`, closedPaths };
}

/** A client's side of a WebSocket tunnel: send messages, await frames, see how it ended. */
export interface WebsocketClient {
  send(opcode: number, payload: Buffer): void;
  /** The next frame from the machine (bounded wait). */
  next(): Promise<Frame>;
  /** Resolves when the tunnel is gone: how (`end` clean, else the reset or error code). */
  ended: Promise<string>;
  /** Cuts the tunnel from the client's side. */
  cut(): void;
}

function clientOver(
  duplex: Duplex,
  ended: Promise<string>,
  cut: () => void,
  early?: Buffer,
): WebsocketClient {
  const reader = new FrameReader();
  const frames: Frame[] = [];
  const waiting: ((frame: Frame) => void)[] = [];
  const take = (chunk: Buffer) => {
    for (const { frame } of reader.push(chunk)) {
      const waiter = waiting.shift();
      if (waiter !== undefined) waiter(frame);
      else frames.push(frame);
    }
  };
  if (early !== undefined && early.length > 0) take(early);
  duplex.on('data', take);
  return {
    send: (opcode, payload) => duplex.write(encodeFrame(opcode, payload, true)),
    next: () => {
      const frame = frames.shift();
      if (frame !== undefined) return Promise.resolve(frame);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no frame within 20 s')), 20_000);
        waiting.push((each) => {
          clearTimeout(timer);
          resolve(each);
        });
      });
    },
    ended,
    cut,
  };
}

/** Opens a WebSocket over HTTP/2 (RFC 8441); resolves with the answer's headers and a client. */
export function websocketOverH2(
  session: ClientHttp2Session,
  authority: string,
  path: string,
  protocol = 'websocket',
  scheme = 'http',
): Promise<{
  status: number;
  headers: Record<string, unknown>;
  body: Buffer;
  client: WebsocketClient;
}> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': 'CONNECT',
      ':protocol': protocol,
      ':scheme': scheme,
      ':path': path,
      ':authority': authority,
      'sec-websocket-version': '13',
      'sec-websocket-protocol': 'chat, superchat',
    });
    const ended = new Promise<string>((done) => {
      stream.on('error', () => {});
      stream.on('close', () => done(stream.rstCode ? `rst ${stream.rstCode}` : 'end'));
    });
    stream.on('response', (headers) => {
      const status = Number(headers[':status']);
      const client = clientOver(stream, ended, () => stream.close(0x8));
      if (status === 200) {
        resolve({ status, headers, body: Buffer.alloc(0), client });
        return;
      }
      const chunks: Buffer[] = [];
      stream.removeAllListeners('data');
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => resolve({ status, headers, body: Buffer.concat(chunks), client }));
    });
    stream.on('error', reject);
  });
}

/** Opens a WebSocket over HTTP/1.1 Upgrade on a raw socket to `url`, checking the accept. */
export function websocketOverHttp1(
  url: string,
  host: string,
  path: string,
): Promise<{ head: string; client: WebsocketClient }> {
  const { hostname, port } = new URL(url);
  const key = randomBytes(16).toString('base64');
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () =>
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    const ended = new Promise<string>((done) => {
      socket.on('error', (error: NodeJS.ErrnoException) => done(error.code ?? 'error'));
      socket.on('close', () => done('end'));
    });
    let seen = Buffer.alloc(0);
    const onHead = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const end = seen.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onHead);
      const head = seen.toString('latin1', 0, end);
      if (/sec-websocket-accept: (\S+)/i.exec(head)?.[1] !== acceptOf(key)) {
        reject(new Error(`no valid accept in ${head}`));
        return;
      }
      const client = clientOver(
        socket,
        ended,
        () => socket.resetAndDestroy(),
        seen.subarray(end + 4),
      );
      resolve({ head, client });
    };
    socket.on('data', onHead);
    socket.on('error', reject);
  });
}
