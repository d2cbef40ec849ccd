import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/** Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, never forwarded. */
const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Copies end-to-end headers: drops hop-by-hop ones and those the Connection header names. */
export function endToEnd(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((name) => name.trim().toLowerCase())
      .filter(Boolean),
  );
  const kept: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || hopByHop.has(name) || named.has(name)) continue;
    kept[name] = value;
  }
  return kept;
}

/** The headers a machine receives: the client's end-to-end headers plus Fly's forwarding ones. */
export function upstreamHeaders(
  request: IncomingMessage,
  requestId: string,
  region: string,
): Record<string, string | string[]> {
  const headers = endToEnd(request.headers);
  const client = request.socket.remoteAddress ?? '';
  const previous = request.headers['x-forwarded-for'];
  headers['x-forwarded-for'] = previous ? `${previous}, ${client}` : client;
  headers['x-forwarded-proto'] = 'http';
  headers['x-forwarded-host'] = request.headers.host ?? '';
  headers['x-forwarded-port'] = String(request.socket.localPort ?? '');
  headers['fly-client-ip'] = client;
  headers['fly-request-id'] = requestId;
  headers['fly-region'] = region;
  return headers;
}
