import assert from 'node:assert/strict';
import { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { isHopByHop } from '../forward-headers.js';
import { BodyFramer } from '../http1/body.js';
import { Exchange } from '../http1/exchange.js';
import type { ExchangeClient } from '../http1/exchange-client.js';
import { type Framing, type RequestHead, type ResponseHead, refusedTarget } from '../http1/head.js';
import type { Http1Relay } from '../http1/relay.js';
import { watchedOf } from '../tls/guard.js';
import { fieldSectionBytes } from './server-options.js';
import { websocketAcceptRefusal, websocketKey } from './websocket.js';

const lastChunk = Buffer.from('0\r\n\r\n', 'latin1');
const crlf = Buffer.from('\r\n', 'latin1');

/**
 * One HTTP/2 request (h2 over TLS, h2c) relayed by the same Exchange as HTTP/1.1 requests: same
 * routing, retries, replay, forwarding headers, metrics and per-machine pools. The stream's
 * headers become an HTTP/1.1 request head (`:authority` as Host, `:path` as target); a body of
 * unknown length goes to the machine chunked. The machine's answer comes back as HTTP/2 headers
 * and DATA, chunked framing removed. A WebSocket's extended CONNECT (RFC 8441) becomes an HTTP/1.1
 * Upgrade; the machine's 101 becomes a 200 and the stream a tunnel, as an upgraded connection is.
 */
export class Http2StreamClient implements ExchangeClient {
  buffer: Buffer | null = null;
  closed = false;
  stalledSinceMs = 0;
  readonly http2 = true;
  readonly clientIp: string;
  readonly localPort: number;
  readonly servicePort = undefined;
  readonly encrypted: boolean;
  exchange: Exchange | undefined;
  #chunked = false;
  #responseBody: BodyFramer | undefined;
  #flushed = true;
  #ended = false;
  /** The Sec-WebSocket-Key sent to the machine (extended CONNECT); undefined otherwise. */
  #websocketKey: string | undefined;
  #tunnel = false;

  constructor(
    readonly stream: ServerHttp2Stream,
    readonly relay: Http1Relay,
  ) {
    const socket = stream.session?.socket as { encrypted?: boolean } & Partial<Socket>;
    this.clientIp = socket?.remoteAddress ?? '';
    this.localPort = socket?.localPort ?? 0;
    this.encrypted = socket?.encrypted === true;
  }

  /** Starts relaying the request: refused at once when its headers cannot make an HTTP/1.1 head. */
  start(headers: IncomingHttpHeaders, rawHeaders: string[]): void {
    const stream = this.stream;
    stream.on('error', () => {}); // 'close' follows
    stream.on('close', () => {
      this.closed = true;
      this.exchange?.abort();
      this.#untrack();
    });
    const headBytesMax = this.relay.options.headBytesMax;
    if (fieldSectionBytes(rawHeaders) > headBytesMax) {
      const message = `the request head is over ${headBytesMax} bytes`;
      this.#refuse(431, 'PROXY_ERR_HEADERS_TOO_LARGE', message);
      return;
    }
    const head = requestHeadOf(headers, stream.endAfterHeaders);
    if (typeof head === 'string') {
      this.#refuse(400, 'PROXY_ERR_BAD_REQUEST', head);
      return;
    }
    this.#chunked = head.framing.kind === 'chunked';
    if (head.upgrade !== undefined)
      this.#websocketKey = head.headers.find(([name]) => name === 'sec-websocket-key')?.[1];
    const watched = watchedOf(stream.session?.socket);
    if (watched !== undefined) {
      watched.requestsStarted += 1;
      watched.requestsInFlight += 1;
    }
    this.relay.track(this);
    const exchange = new Exchange(this, head);
    this.exchange = exchange;
    stream.on('data', (chunk: Buffer) => {
      if (this.exchange === undefined) return; // answered already: the rest is dropped
      const framed = this.#chunked
        ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`, 'latin1'), chunk, crlf])
        : chunk;
      const after = this.exchange.clientData(framed);
      if (after !== null) this.#after(after);
    });
    stream.on('end', () => {
      if (this.exchange === undefined) return;
      if (this.#chunked) this.exchange.clientData(lastChunk);
      this.exchange?.clientEnded();
    });
    stream.on('drain', () => {
      this.stalledSinceMs = 0;
      this.exchange?.clientDrained();
    });
    exchange.start(null);
  }

  pauseReading(): void {
    this.stream.pause();
  }

  resumeReading(): void {
    if (!this.closed && this.stream.isPaused()) this.stream.resume();
  }

  sendContinue(): void {
    if (!this.closed) this.stream.additionalHeaders({ ':status': 100 });
  }

  sendInformational(head: ResponseHead): void {
    if (!this.closed) this.stream.additionalHeaders(responseHeaders(head, undefined));
  }

  sendHead(
    head: ResponseHead,
    requestId: string,
    _connection: unknown,
    _extra: unknown,
    body: Buffer | null,
  ): boolean {
    if (this.closed) return true;
    this.#ended = head.framing.kind === 'none';
    this.stream.respond(responseHeaders(head, requestId), { endStream: this.#ended });
    this.#responseBody =
      head.framing.kind === 'chunked' ? this.#dechunker(head.framing) : undefined;
    // HEADERS and the first DATA are batched by the session: two calls, one write.
    return body === null || this.sendBody(body);
  }

  sendBody(chunk: Buffer): boolean {
    if (this.closed) return true;
    if (this.#responseBody === undefined) return this.#write(chunk);
    this.#flushed = true;
    this.#responseBody.take(chunk); // the exchange's own framer already checked it
    return this.#flushed;
  }

  endBody(): void {
    if (this.closed || this.#ended || !this.stream.headersSent) return;
    this.#ended = true;
    this.stream.end();
  }

  upgradeRefusal(head: ResponseHead): string | undefined {
    assert(this.#websocketKey !== undefined, 'only an extended CONNECT asks for an upgrade');
    return websocketAcceptRefusal(head, this.#websocketKey);
  }

  /** The machine's 101 is the extended CONNECT's 200 (RFC 8441 §5); the stream is a tunnel. */
  sendUpgrade(head: ResponseHead, requestId: string): void {
    if (this.closed) return;
    this.#tunnel = true;
    const headers = responseHeaders(head, requestId);
    headers[':status'] = 200;
    delete headers['sec-websocket-accept'];
    this.stream.respond(headers);
  }

  write(chunk: Buffer): boolean {
    if (this.closed || this.#ended) return true;
    return this.#write(chunk);
  }

  reset(): void {
    // A tunnel cut is a TCP reset on the machine's side: CANCEL (RFC 8441 §5).
    const code = this.#tunnel ? constants.NGHTTP2_CANCEL : constants.NGHTTP2_INTERNAL_ERROR;
    if (!this.closed) this.stream.close(code);
  }

  answer(status: number, code: string, message: string, requestId: string): void {
    if (this.closed || this.stream.headersSent) return;
    const body = JSON.stringify({ error: message, code });
    this.stream.respond({
      ':status': status,
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'fly-request-id': requestId,
    });
    this.stream.end(body);
  }

  redirect(location: string, requestId: string): void {
    if (this.closed || this.stream.headersSent) return;
    this.stream.respond(
      { ':status': 301, location, 'content-length': 0, 'fly-request-id': requestId },
      { endStream: true },
    );
  }

  exchangeDone(): void {
    if (this.exchange === undefined) return;
    this.#untrack();
    if (this.#tunnel) this.endBody(); // the machine closed the tunnel: END_STREAM
    this.#closeUnread();
  }

  /** The exchange is over (done, or aborted with the stream): no longer swept nor in flight. */
  #untrack(): void {
    if (this.exchange === undefined) return;
    this.exchange = undefined;
    this.relay.untrack(this);
    const watched = watchedOf(this.stream.session?.socket);
    if (watched !== undefined) watched.requestsInFlight -= 1;
  }

  /** Refuses a request before any exchange, counted as the HTTP/1.1 relay counts its own. */
  #refuse(status: number, code: string, message: string): void {
    this.relay.deps.metrics.request('', status);
    this.answer(status, code, message, this.relay.requestId());
    this.#closeUnread();
  }

  /**
   * Answered before the client finished its body (a refusal, say): the rest is not wanted.
   * RFC 9113 §8.1: the stream is reset with NO_ERROR once the answer is sent.
   */
  #closeUnread(): void {
    if (!this.stream.readableEnded && !this.stream.endAfterHeaders && !this.closed) {
      this.stream.resume();
      const close = () => this.stream.close(constants.NGHTTP2_NO_ERROR);
      if (this.stream.writableFinished) close();
      else this.stream.once('finish', close);
    }
  }

  #write(data: Buffer): boolean {
    const flushed = this.stream.write(data);
    if (!flushed && this.stalledSinceMs === 0) this.stalledSinceMs = Date.now();
    return flushed;
  }

  #dechunker(framing: Framing): BodyFramer {
    return new BodyFramer(framing, (data) => {
      if (!this.#write(data)) this.#flushed = false;
    });
  }

  /**
   * Bytes past the request: a WebSocket's first frames sent before the machine accepted (kept,
   * bounded as an HTTP/1.1 connection's, and written once the tunnel is up), or bytes past a
   * declared content-length (the client broke its own framing).
   */
  #after(bytes: Buffer): void {
    if (this.#websocketKey === undefined) {
      this.exchange?.abort();
      return;
    }
    this.buffer = this.buffer === null ? bytes : Buffer.concat([this.buffer, bytes]);
    if (this.buffer.length > this.relay.options.headBytesMax) this.stream.pause();
  }
}

/**
 * The HTTP/1.1 head an HTTP/2 request stands for, or why there is none. A WebSocket's extended
 * CONNECT (`:protocol: websocket`, RFC 8441 §4) becomes `GET` with `Upgrade: websocket` and a
 * `Sec-WebSocket-Key` of the proxy's own; its other fields (version, subprotocols, extensions,
 * origin) go as they came.
 */
function requestHeadOf(headers: IncomingHttpHeaders, ended: boolean): RequestHead | string {
  const protocol = headers[':protocol'];
  const websocket = headers[':method'] === 'CONNECT' && protocol !== undefined;
  if (websocket) {
    if (protocol.toLowerCase() !== 'websocket')
      return `extended CONNECT for ${protocol} is not relayed (only websocket)`;
    if (ended) return 'a WebSocket CONNECT ended its stream: there is no tunnel to open';
  }
  const method = websocket ? 'GET' : (headers[':method'] ?? 'GET');
  // A CONNECT has no :path (RFC 9113 §8.5): refused below for what it is.
  const target = headers[':path'] ?? (method === 'CONNECT' ? '' : undefined);
  if (target === undefined) return 'the request has no :path';
  const refused = refusedTarget(method, target);
  if (refused !== undefined) return refused;
  const list: [string, string][] = [];
  const hosts: string[] = [];
  let length = -1;
  let expect: string | undefined;
  for (const name in headers) {
    if (name.charCodeAt(0) === 58) continue; // pseudo-headers
    const value = headers[name];
    if (value === undefined) continue;
    if (name === 'host') {
      hosts.push(...(Array.isArray(value) ? value : [value]));
      continue;
    }
    if (websocket && (name === 'content-length' || name === 'sec-websocket-key')) continue;
    if (name === 'content-length') {
      if (!/^\d{1,15}$/.test(String(value))) return `Content-Length ${value} is not a number`;
      length = Number(value);
    } else if (name === 'expect') expect = String(value).toLowerCase();
    if (Array.isArray(value)) for (const each of value) list.push([name, each]);
    else list.push([name, value]);
  }
  const authority = headers[':authority'];
  if (authority !== undefined) hosts.splice(0, hosts.length, authority);
  if (expect !== undefined && expect !== '100-continue')
    return `the expectation ${expect} is not supported (only 100-continue)`;
  if (websocket) list.push(['sec-websocket-key', websocketKey()]);
  let framing: Framing;
  if (websocket) framing = { kind: 'none' };
  else if (length > 0) framing = { kind: 'length', length };
  else if (length === 0 || ended) framing = { kind: 'none' };
  else {
    framing = { kind: 'chunked' };
    list.push(['transfer-encoding', 'chunked']);
  }
  return {
    method,
    target,
    minor: 1,
    headers: list,
    connection: [],
    hosts,
    expectContinue: expect === '100-continue',
    upgrade: websocket ? 'websocket' : undefined,
    framing,
  };
}

/** The machine's answer as HTTP/2 headers: no connection-specific fields (RFC 9113 §8.2.2). */
function responseHeaders(
  head: ResponseHead,
  requestId: string | undefined,
): Record<string, string | string[] | number> {
  const out: Record<string, string | string[] | number> = { ':status': head.status };
  for (const [name, value] of head.headers) {
    if (
      isHopByHop(name) ||
      name === 'transfer-encoding' ||
      name === 'fly-request-id' ||
      name.startsWith('fly-backhaul-') ||
      head.connection.includes(name)
    )
      continue;
    const previous = out[name];
    if (previous === undefined) out[name] = value;
    else if (name === 'set-cookie')
      out[name] = Array.isArray(previous) ? [...previous, value] : [String(previous), value];
    else out[name] = `${previous}, ${value}`;
  }
  if (requestId !== undefined) out['fly-request-id'] = requestId;
  return out;
}
