import { createHash, randomBytes } from 'node:crypto';
import type { ResponseHead } from '../http1/head.js';

// RFC 6455 §1.3: the GUID a server appends to the key before hashing it into its accept.
const websocketGuid = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/**
 * WebSocket over HTTP/2 (RFC 8441) to a machine that speaks HTTP/1.1 Upgrade: the h2 client's
 * extended CONNECT carries no `Sec-WebSocket-Key` (§5), so the proxy makes one for the machine
 * and, as the HTTP/1.1 side's WebSocket client, checks the machine's accept (RFC 6455 §4.1).
 */
export function websocketKey(): string {
  return randomBytes(16).toString('base64');
}

/** Why the machine's 101 does not complete the handshake for `key`; undefined when it does. */
export function websocketAcceptRefusal(head: ResponseHead, key: string): string | undefined {
  const field = (wanted: string) => head.headers.find(([name]) => name === wanted)?.[1];
  if (field('upgrade')?.toLowerCase() !== 'websocket')
    return 'the machine switched to another protocol than websocket';
  const expected = createHash('sha1').update(`${key}${websocketGuid}`).digest('base64');
  if (field('sec-websocket-accept') !== expected)
    return 'the machine answered the WebSocket upgrade with a wrong Sec-WebSocket-Accept';
  return undefined;
}
