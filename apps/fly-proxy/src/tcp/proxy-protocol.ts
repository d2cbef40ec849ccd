import { isIPv4 } from 'node:net';

/** PROXY protocol v2's fixed signature (haproxy's proxy-protocol.txt, section 2.2). */
const v2Signature = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);

export interface Endpoints {
  sourceAddress: string;
  sourcePort: number;
  destinationAddress: string;
  destinationPort: number;
}

/**
 * The header the proxy sends a machine before a connection's bytes when its port has the
 * `proxy_proto` handler: the client's address and port and the one it connected to.
 */
export function proxyProtocolHeader(version: 1 | 2, endpoints: Endpoints): Buffer {
  const source = unmapped(endpoints.sourceAddress);
  const destination = unmapped(endpoints.destinationAddress);
  const v4 = isIPv4(source) && isIPv4(destination);
  if (version === 1) {
    return Buffer.from(
      `PROXY ${v4 ? 'TCP4' : 'TCP6'} ${source} ${destination} ${endpoints.sourcePort} ${endpoints.destinationPort}\r\n`,
      'latin1',
    );
  }
  const addresses = v4
    ? Buffer.concat([ipv4Bytes(source), ipv4Bytes(destination), ports(endpoints)])
    : Buffer.concat([ipv6Bytes(source), ipv6Bytes(destination), ports(endpoints)]);
  const fixed = Buffer.alloc(4);
  fixed[0] = 0x21; // version 2, command PROXY
  fixed[1] = v4 ? 0x11 : 0x21; // TCP over IPv4 or IPv6
  fixed.writeUInt16BE(addresses.length, 2);
  return Buffer.concat([v2Signature, fixed, addresses]);
}

/** `::ffff:1.2.3.4` (an IPv4 client on a dual-stack socket) as `1.2.3.4`. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}

function ports(endpoints: Endpoints): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt16BE(endpoints.sourcePort, 0);
  bytes.writeUInt16BE(endpoints.destinationPort, 2);
  return bytes;
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail = ''] = address.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const left = groups(head);
  const right = groups(tail);
  const all = address.includes('::')
    ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right]
    : left;
  const bytes = Buffer.alloc(16);
  for (const [index, group] of all.entries()) {
    bytes.writeUInt16BE(Number.parseInt(group, 16), index * 2);
  }
  return bytes;
}
