import { hopByHop, neverHopByHop, proxySet } from '../forward-headers.js';
import type { RequestHead, ResponseHead } from './head.js';

function dropped(head: RequestHead | ResponseHead, name: string): boolean {
  return hopByHop.has(name) || (head.connection.includes(name) && !neverHopByHop.has(name));
}

export interface Forwarding {
  host: string;
  path: string;
  clientIp: string;
  localPort: number;
  encrypted: boolean;
  requestId: string;
  region: string;
  /** `fly-replay-src` of a replayed request; `fly-replay-failed` of a fallback after one. */
  replaySource?: string;
  replayFailed?: string;
}

/**
 * The head the machine receives: origin-form target, the client's end-to-end headers, Fly's
 * forwarding headers. HTTP/1.0 clients are forwarded as HTTP/1.0 (the machine then answers
 * without chunked framing, which they cannot read) on a connection closed afterwards.
 */
export function upstreamRequestHead(head: RequestHead, forwarding: Forwarding): string {
  let previousFor = '';
  let out = `${head.method} ${forwarding.path} HTTP/1.${head.minor}\r\nhost: ${forwarding.host}\r\n`;
  for (const [name, value] of head.headers) {
    if (name === 'x-forwarded-for') previousFor = previousFor ? `${previousFor}, ${value}` : value;
    if (proxySet.has(name) || dropped(head, name)) continue;
    out += `${name}: ${value}\r\n`;
  }
  const port = forwarding.localPort;
  const proto = forwarding.encrypted ? 'https' : 'http';
  const client = forwarding.clientIp;
  out +=
    `x-forwarded-for: ${previousFor ? `${previousFor}, ${client}` : client}\r\n` +
    `x-forwarded-proto: ${proto}\r\nx-forwarded-ssl: ${forwarding.encrypted ? 'on' : 'off'}\r\n` +
    `x-forwarded-host: ${forwarding.host}\r\nx-forwarded-port: ${port}\r\n` +
    `fly-client-ip: ${client}\r\nfly-forwarded-port: ${port}\r\n` +
    `fly-request-id: ${forwarding.requestId}\r\nfly-region: ${forwarding.region}\r\n` +
    `via: 1.${head.minor} fly.io\r\n`;
  if (forwarding.replaySource !== undefined)
    out += `fly-replay-src: ${forwarding.replaySource}\r\n`;
  if (forwarding.replayFailed !== undefined)
    out += `fly-replay-failed: ${forwarding.replayFailed}\r\n`;
  if (head.upgrade !== undefined) out += `connection: upgrade\r\nupgrade: ${head.upgrade}\r\n`;
  else if (head.minor === 0) out += 'connection: close\r\n';
  return `${out}\r\n`;
}

/**
 * The head the client receives: the machine's status and end-to-end headers, `fly-request-id`,
 * and the proxy's own decision on keeping the connection (`close` when it will close it).
 */
export function clientResponseHead(
  head: ResponseHead,
  requestId: string,
  connection: 'keep-alive' | 'close' | 'upgrade' | undefined,
  upgrade?: string,
): string {
  let out = `HTTP/1.1 ${head.status} ${head.reason}\r\n`;
  for (const [name, value] of head.headers) {
    if (name === 'fly-request-id' || dropped(head, name)) continue;
    out += `${name}: ${value}\r\n`;
  }
  out += `fly-request-id: ${requestId}\r\n`;
  if (connection !== undefined) out += `connection: ${connection}\r\n`;
  if (upgrade !== undefined) out += `upgrade: ${upgrade}\r\n`;
  return `${out}\r\n`;
}
