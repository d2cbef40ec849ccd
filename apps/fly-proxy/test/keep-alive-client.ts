import { connect, type Socket } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * One keep-alive HTTP/1.1 connection on a raw socket, one request at a time: tests see exactly
 * which connection a response came on, its `connection` header, and when the proxy closes it.
 * Responses must carry content-length (the relay's machines and errors do).
 */
export class KeepAliveClient {
  readonly socket: Socket;
  readonly closed: Promise<void>;
  readonly connected: Promise<void>;
  #seen = Buffer.alloc(0);
  #waiting: (() => void) | undefined;
  #isClosed = false;

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
    this.socket.on('error', () => undefined);
    this.socket.on('data', (chunk: Buffer) => {
      this.#seen = Buffer.concat([this.#seen, chunk]);
      this.#waiting?.();
    });
    this.closed = new Promise((resolve) =>
      this.socket.once('close', () => {
        this.#isClosed = true;
        this.#waiting?.();
        resolve();
      }),
    );
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Sends one request and reads its response; throws when none comes within `timeoutMs`. */
  async request(host: string, path = '/', timeoutMs = 15_000): Promise<RawResponse> {
    await this.connected;
    this.socket.write(`GET ${path} HTTP/1.1\r\nhost: ${host}\r\n\r\n`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const parsed = this.#parse();
      if (parsed !== undefined) return parsed;
      if (this.#isClosed) throw new Error('connection closed before a whole response');
      const leftMs = deadline - Date.now();
      if (leftMs <= 0) throw new Error(`no whole response within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, leftMs);
        this.#waiting = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }

  #parse(): RawResponse | undefined {
    const end = this.#seen.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const lines = this.#seen.toString('latin1', 0, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    if (this.#seen.length < end + 4 + length) return undefined;
    const body = this.#seen.toString('utf8', end + 4, end + 4 + length);
    this.#seen = this.#seen.subarray(end + 4 + length);
    return { status: Number(lines[0]?.split(' ')[1]), headers, body };
  }
}
