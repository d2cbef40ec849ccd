import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Watched } from '../tls/guard.js';
import { Exchange } from './exchange.js';
import type { ExchangeClient } from './exchange-client.js';
import { HeadError, parseRequestHead, type ResponseHead } from './head.js';
import { clientResponseHead } from './heads-out.js';
import type { Http1Relay } from './relay.js';

const headEnd = Buffer.from('\r\n\r\n', 'latin1');
/**
 * A response head and a first body chunk up to this size are copied into one buffer and leave
 * in one plain write: cheaper than corking the socket, which makes Node gather them with a
 * writev through its stream buffer list and a native allocation per response. A larger body
 * goes as its own write behind the head (the copy would cost more than it saves).
 */
const joinedBodyBytesMax = 16 * 1024;
const continueHead = 'HTTP/1.1 100 Continue\r\n\r\n';

/** A TCP or TLS socket, or a backhaul's CONNECT stream carrying an edge's HTTP/1.1 exchange. */
export type ClientSocket = Duplex &
  Partial<Pick<Socket, 'remoteAddress' | 'localPort' | 'setNoDelay' | 'resetAndDestroy'>>;

/**
 * One client connection of the HTTP/1.1 relay: reads request heads off the socket, runs one
 * exchange at a time (pipelined requests wait in the buffer, bounded), and answers what the
 * proxy refuses itself. Timeouts are checked by the relay's sweep, not by a timer per request.
 */
export class ClientConnection implements ExchangeClient {
  /** Bytes read and not yet part of an exchange (the next request head, pipelined requests). */
  buffer: Buffer | null = null;
  exchange: Exchange | undefined;
  /** When the first byte of a head still incomplete arrived (0: none pending). */
  headStartedMs = 0;
  /** Since when a response waits for the client to read (0: not waiting). */
  stalledSinceMs = 0;
  closed = false;
  readonly http2 = false;
  #parsing = false;
  #parseAgain = false;

  constructor(
    readonly socket: ClientSocket,
    readonly relay: Http1Relay,
    readonly watched: Watched | undefined,
    readonly servicePort: number | undefined,
  ) {
    socket.setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    socket.on('drain', () => {
      this.stalledSinceMs = 0;
      this.exchange?.clientDrained();
    });
    socket.on('end', () => {
      if (this.exchange === undefined) socket.end();
      else this.exchange.clientEnded();
    });
    socket.on('error', () => {}); // 'close' follows
    socket.on('close', () => {
      this.closed = true;
      this.exchange?.abort();
      relay.forget(this);
    });
  }

  get clientIp(): string {
    return this.socket.remoteAddress ?? '';
  }

  get localPort(): number {
    return this.socket.localPort ?? 0;
  }

  get encrypted(): boolean {
    return (this.socket as { encrypted?: boolean }).encrypted === true;
  }

  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    if (this.socket.isPaused() && !this.closed) this.socket.resume();
  }

  sendContinue(): void {
    this.write(continueHead);
  }

  sendInformational(head: ResponseHead, requestId: string): void {
    this.write(clientResponseHead(head, requestId, undefined));
  }

  sendHead(
    head: ResponseHead,
    requestId: string,
    connection: 'keep-alive' | 'close' | undefined,
    extra: string | undefined,
    body: Buffer | null,
  ): boolean {
    const text = clientResponseHead(head, requestId, connection, undefined, extra);
    if (body === null) return this.write(text);
    if (body.length > joinedBodyBytesMax) {
      this.socket.cork(); // still one writev: no packet with the head alone
      this.write(text);
      const flushed = this.write(body);
      this.socket.uncork();
      return flushed;
    }
    // Latin1: one byte per character of the head.
    const joined = Buffer.allocUnsafe(text.length + body.length);
    joined.write(text, 0, 'latin1');
    body.copy(joined, text.length);
    return this.write(joined);
  }

  sendBody(chunk: Buffer): boolean {
    return this.write(chunk);
  }

  endBody(): void {} // the body's own framing ends it

  upgradeRefusal(): undefined {
    return undefined; // the client's own key went to the machine: the client checks the accept
  }

  sendUpgrade(head: ResponseHead, requestId: string, upgrade: string): void {
    this.write(clientResponseHead(head, requestId, 'upgrade', upgrade));
  }

  reset(): void {
    // A reset, not a FIN: the client sees the response broken (never a short one complete), and
    // the kernel drops what was queued for it at once instead of trickling it to a slow reader.
    if (this.closed) return;
    if (this.socket.resetAndDestroy !== undefined) this.socket.resetAndDestroy();
    else this.socket.destroy(); // a stream: RST_STREAM
  }

  /** Writes to the client, noting when it stops reading (the slow-reader bound). */
  write(data: Buffer | string): boolean {
    const flushed =
      typeof data === 'string' ? this.socket.write(data, 'latin1') : this.socket.write(data);
    if (!flushed && this.stalledSinceMs === 0) this.stalledSinceMs = Date.now();
    return flushed;
  }

  /** An exchange finished: go on with the next request, or close. */
  exchangeDone(keepAlive: boolean): void {
    this.exchange = undefined;
    if (this.watched !== undefined) this.watched.requestsInFlight -= 1;
    if (!keepAlive || this.closed) {
      this.socket.end();
      return;
    }
    if (this.socket.isPaused()) this.socket.resume();
    if (this.buffer !== null) this.#parse();
  }

  /**
   * Answers the proxy's own JSON error. When the request's body was not read to its end, the
   * connection cannot find the next request: it is closed after the answer.
   */
  answer(status: number, code: string, message: string, requestId: string, close: boolean): void {
    if (this.closed) return;
    const body = JSON.stringify({ error: message, code });
    this.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nfly-request-id: ${requestId}\r\n` +
        `${close ? 'connection: close\r\n' : ''}\r\n${body}`,
    );
  }

  /** Answers 301 to `location` (force_https). */
  redirect(location: string, requestId: string, close: boolean): void {
    if (this.closed) return;
    this.write(
      `HTTP/1.1 301 Moved Permanently\r\nlocation: ${location}\r\ncontent-length: 0\r\n` +
        `fly-request-id: ${requestId}\r\n${close ? 'connection: close\r\n' : ''}\r\n`,
    );
  }

  /** Refuses what cannot be a request (counted with no app: none was named), and closes. */
  refuse(status: number, code: string, message: string): void {
    this.relay.deps.metrics.request('', status);
    this.answer(status, code, message, this.relay.requestId(), true);
    this.buffer = null;
    this.socket.end();
    this.socket.pause();
  }

  #read(chunk: Buffer): void {
    if (this.socket.writableEnded) return; // answered and closing: nothing more is read
    if (this.exchange !== undefined) {
      const rest = this.exchange.clientData(chunk);
      if (rest === null) return;
      chunk = rest;
    }
    this.buffer = this.buffer === null ? chunk : Buffer.concat([this.buffer, chunk]);
    if (this.exchange === undefined) this.#parse();
    else if (this.buffer.length > this.relay.options.headBytesMax) this.socket.pause();
  }

  /**
   * Starts the exchanges of the buffered requests, one after the other. An exchange the proxy
   * answers at once (a request without Host, say) ends inside this call and asks for the next:
   * that is a loop here, never a recursion, so thousands of pipelined requests cannot exhaust
   * the stack.
   */
  #parse(): void {
    if (this.#parsing) {
      this.#parseAgain = true;
      return;
    }
    this.#parsing = true;
    try {
      do {
        this.#parseAgain = false;
        this.#parseOne();
      } while (this.#parseAgain && this.exchange === undefined && this.buffer !== null);
    } finally {
      this.#parsing = false;
    }
  }

  #parseOne(): void {
    const buffer = this.buffer;
    if (buffer === null || this.socket.writableEnded) return;
    let start = 0;
    // RFC 9112 §2.2: empty lines before a request line are ignored.
    while (buffer[start] === 13 && buffer[start + 1] === 10) start += 2;
    const end = buffer.indexOf(headEnd, start);
    const headBytesMax = this.relay.options.headBytesMax;
    if (end < 0 || end - start > headBytesMax) {
      if (buffer.length - start > headBytesMax || end >= 0) {
        this.refuse(
          431,
          'PROXY_ERR_HEADERS_TOO_LARGE',
          `the request head is over ${headBytesMax} bytes`,
        );
      } else if (bareLf(buffer, start)) {
        // Its head would never end (no CRLF CRLF): told now, not after the head timeout.
        this.refuse(400, 'PROXY_ERR_BAD_REQUEST', 'a request head line ends in LF alone, not CRLF');
      } else if (this.headStartedMs === 0 && buffer.length > start) {
        this.headStartedMs = Date.now();
      }
      if (start > 0) this.buffer = start === buffer.length ? null : buffer.subarray(start);
      return;
    }
    this.headStartedMs = 0;
    const rest = end + 4 === buffer.length ? null : buffer.subarray(end + 4);
    this.buffer = null;
    let head: ReturnType<typeof parseRequestHead>;
    try {
      head = parseRequestHead(buffer.toString('latin1', start, end));
    } catch (error) {
      if (!(error instanceof HeadError)) throw error;
      this.refuse(error.status, 'PROXY_ERR_BAD_REQUEST', error.message);
      return;
    }
    if (this.watched !== undefined) {
      this.watched.requestsStarted += 1;
      this.watched.requestsInFlight += 1;
    }
    this.exchange = new Exchange(this, head);
    this.exchange.start(rest);
  }
}

/** Whether a line of the (incomplete) head from `start` on ends in an LF without its CR. */
function bareLf(buffer: Buffer, start: number): boolean {
  for (let lf = buffer.indexOf(10, start); lf >= 0; lf = buffer.indexOf(10, lf + 1)) {
    if (lf === start || buffer[lf - 1] !== 13) return true;
  }
  return false;
}
