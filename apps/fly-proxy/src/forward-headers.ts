/**
 * Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, never forwarded.
 * `transfer-encoding` is not among them: the relay forwards bodies framed as they came. Read by
 * length first: it runs for every header of every message, whose names are fresh strings a Set
 * would hash each time.
 */
export function isHopByHop(name: string): boolean {
  switch (name.length) {
    case 2:
      return name === 'te';
    case 7:
      return name === 'trailer' || name === 'upgrade';
    case 10:
      return name === 'connection' || name === 'keep-alive';
    case 16:
      return name === 'proxy-connection';
    case 18:
      return name === 'proxy-authenticate';
    case 19:
      return name === 'proxy-authorization';
    default:
      return false;
  }
}

/**
 * Request headers the machine never receives from the client: the proxy sets its own (Fly's
 * request headers and Via), and `expect` is answered here — the relay sends the client
 * `100 Continue` itself, as HAProxy does, and the body is then relayed as any other.
 */
export const proxySet = new Set([
  'host',
  'expect',
  'via',
  'fly-client-ip',
  'fly-forwarded-port',
  'fly-region',
  'fly-request-id',
  'fly-replay-src',
  'fly-replay-failed',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-proto',
  'x-forwarded-ssl',
]);

/**
 * Never dropped because a client's Connection header names them: Host, and the framing headers
 * (the HTTP/1.1 relay forwards a body as it came, so the machine must frame it as the proxy did).
 */
export const neverHopByHop = new Set(['host', 'content-length', 'transfer-encoding']);
