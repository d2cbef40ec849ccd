import type { ResponseHead } from './head.js';
import type { Http1Relay } from './relay.js';

/**
 * The client side of an Exchange: an HTTP/1.x connection (ClientConnection) or one HTTP/2
 * stream (Http2StreamClient). The exchange decides — routing, retries, replay, the machine's
 * pool — and tells the client what to send in protocol-neutral terms; each client writes it in
 * its own protocol.
 */
export interface ExchangeClient {
  readonly relay: Http1Relay;
  /** Bytes read past this request (pipelining, the start of a tunnel); HTTP/2: always null. */
  buffer: Buffer | null;
  readonly closed: boolean;
  /** Since when a response waits for the client to read (0: not waiting). */
  readonly stalledSinceMs: number;
  /** What Fly's forwarding headers say about the client. */
  readonly clientIp: string;
  readonly localPort: number;
  /**
   * The public port of the service listener the request came in on (a service's own `http`
   * port): it picks the app's service, as on Fly. Undefined on the edge's main listeners, where
   * the app's first HTTP service takes the request.
   */
  readonly servicePort: number | undefined;
  readonly encrypted: boolean;
  /** The client spoke HTTP/2 (`Via: 2 fly.io`). */
  readonly http2: boolean;
  pauseReading(): void;
  resumeReading(): void;
  /** `100 Continue` (the proxy answers Expect itself). */
  sendContinue(): void;
  /** A 1xx other than 100 (103 Early Hints) from the machine. */
  sendInformational(head: ResponseHead, requestId: string): void;
  /**
   * The machine's response head and the body bytes that came with it (`body`, as the machine
   * framed them), in one write where the protocol allows; `extra` is raw `name: value\r\n`
   * lines of the proxy's own. False when the client stopped reading.
   */
  sendHead(
    head: ResponseHead,
    requestId: string,
    connection: 'keep-alive' | 'close' | undefined,
    extra: string | undefined,
    body: Buffer | null,
  ): boolean;
  /** Response body bytes as the machine framed them; false when the client stopped reading. */
  sendBody(chunk: Buffer): boolean;
  /** The body ended (a client framing its own messages ends the response). */
  endBody(): void;
  /**
   * Why the machine's 101 cannot open this client's tunnel (undefined: it can). An HTTP/1.1
   * client checks the WebSocket handshake itself; an HTTP/2 one had its key made by the proxy.
   */
  upgradeRefusal(head: ResponseHead): string | undefined;
  /** A 101 answer: the connection (HTTP/1.1) or stream (HTTP/2's extended CONNECT) is a tunnel. */
  sendUpgrade(head: ResponseHead, requestId: string, upgrade: string): void;
  /** Tunnel bytes. */
  write(chunk: Buffer): boolean;
  /** The client is cut mid-response: it must see the response broken, never a short one. */
  reset(): void;
  answer(status: number, code: string, message: string, requestId: string, close: boolean): void;
  redirect(location: string, requestId: string, close: boolean): void;
  exchangeDone(keepAlive: boolean): void;
}
