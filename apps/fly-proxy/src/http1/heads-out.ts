import { backhaulHeaders } from '../backhaul.js';
import { isHopByHop, neverHopByHop, proxySet } from '../forward-headers.js';
import type { RequestHead, ResponseHead } from './head.js';

function dropped(head: RequestHead | ResponseHead, name: string): boolean {
  return isHopByHop(name) || (head.connection.includes(name) && !neverHopByHop.has(name));
}

export interface Forwarding {
  host: string;
  path: string;
  clientIp: string;
  localPort: number;
  encrypted: boolean;
  /** The client spoke HTTP/2: `Via: 2 fly.io`. */
  http2: boolean;
  requestId: string;
  region: string;
  /** `fly-replay-src` of a replayed request; `fly-replay-failed` of a fallback after one. */
  replaySource?: string;
  replayFailed?: string;
  /** Sent to the machine's host's backhaul rather than to the machine. */
  backhaul?: { machineId: string; app: string; token: string; internalPort: number };
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
    `via: ${forwarding.http2 ? '2' : `1.${head.minor}`} fly.io\r\n`;
  if (forwarding.replaySource !== undefined)
    out += `fly-replay-src: ${forwarding.replaySource}\r\n`;
  if (forwarding.replayFailed !== undefined)
    out += `fly-replay-failed: ${forwarding.replayFailed}\r\n`;
  const backhaul = forwarding.backhaul;
  if (backhaul !== undefined) {
    out +=
      `${backhaulHeaders.machine}: ${backhaul.machineId}\r\n${backhaulHeaders.app}: ${backhaul.app}\r\n` +
      `${backhaulHeaders.auth}: ${backhaul.token}\r\n${backhaulHeaders.service}: ${backhaul.internalPort}\r\n`;
  }
  if (head.upgrade !== undefined) out += `connection: upgrade\r\nupgrade: ${head.upgrade}\r\n`;
  else if (head.minor === 0) out += 'connection: close\r\n';
  return `${out}\r\n`;
}

/**
 * What a backhaul delivers to its machine: the edge's head as it came (the edge already set the
 * forwarding headers and dropped hop-by-hop ones), without the backhaul's own headers.
 */
export function deliveredHead(head: RequestHead): string {
  let out = `${head.method} ${head.target} HTTP/1.${head.minor}\r\n`;
  for (const [name, value] of head.headers) {
    if (!name.startsWith('fly-backhaul-')) out += `${name}: ${value}\r\n`;
  }
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
  extra?: string,
): string {
  let out = `HTTP/1.1 ${head.status} ${head.reason}\r\n`;
  for (const [name, value] of head.headers) {
    if (name === 'fly-request-id' || name.startsWith('fly-backhaul-') || dropped(head, name))
      continue;
    out += `${name}: ${value}\r\n`;
  }
  out += `fly-request-id: ${requestId}\r\n`;
  if (extra !== undefined) out += extra;
  if (connection !== undefined) out += `connection: ${connection}\r\n`;
  if (upgrade !== undefined) out += `upgrade: ${upgrade}\r\n`;
  return `${out}\r\n`;
}
