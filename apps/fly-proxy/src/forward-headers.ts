import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, never forwarded. Also
 * `transfer-encoding`, except by the HTTP/1.1 relay, which forwards bodies framed as they came.
 */
export const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'upgrade',
]);

/**
 * Request headers the machine never receives from the client: the proxy sets its own (Fly's
 * request headers and Via), and `expect` is answered here — Node's server sends the client
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

/** Copies end-to-end headers: drops hop-by-hop ones and those the Connection header names. */
export function endToEnd(
  headers: IncomingHttpHeaders,
  dropped?: ReadonlySet<string>,
): Record<string, string | string[]> {
  const connection = headers.connection;
  const named = connection
    ? new Set(
        String(connection)
          .split(',')
          .map((name) => name.trim().toLowerCase())
          .filter((name) => name && !neverHopByHop.has(name)),
      )
    : undefined;
  const kept: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (
      value === undefined ||
      hopByHop.has(name) ||
      name === 'transfer-encoding' ||
      named?.has(name) ||
      dropped?.has(name)
    )
      continue;
    kept[name] = value;
  }
  return kept;
}

/** The headers a machine receives: the client's end-to-end headers plus Fly's forwarding ones. */
export function upstreamHeaders(
  request: IncomingMessage,
  host: string,
  requestId: string,
  region: string,
): Record<string, string | string[]> {
  const headers = endToEnd(request.headers, proxySet);
  const socket = request.socket as IncomingMessage['socket'] & { encrypted?: boolean };
  const client = socket.remoteAddress ?? '';
  const port = String(socket.localPort ?? '');
  const previous = request.headers['x-forwarded-for'];
  headers.host = host;
  headers['x-forwarded-for'] = previous ? `${previous}, ${client}` : client;
  headers['x-forwarded-proto'] = socket.encrypted ? 'https' : 'http';
  headers['x-forwarded-ssl'] = socket.encrypted ? 'on' : 'off';
  headers['x-forwarded-host'] = host;
  headers['x-forwarded-port'] = port;
  headers['fly-client-ip'] = client;
  headers['fly-forwarded-port'] = port;
  headers['fly-request-id'] = requestId;
  headers['fly-region'] = region;
  headers.via = `${request.httpVersionMajor === 2 ? '2' : '1.1'} fly.io`;
  return headers;
}
