import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';

/** Bytes waiting in a receive queue that still count as read up: about one slot's datagrams. */
const nearlyEmptyBytes = 64 * 1024;

/**
 * How an IPv4 address:port appears in /proc/net/udp's local_address: the address as the host
 * reads the four network-order bytes as an integer, the port in hex, both upper case.
 */
export function procNetKey(addr: string): string {
  const colon = addr.lastIndexOf(':');
  const bytes = Buffer.from(addr.slice(0, colon).split('.').map(Number));
  const host = endianness() === 'LE' ? bytes.readUInt32LE(0) : bytes.readUInt32BE(0);
  const port = Number(addr.slice(colon + 1));
  return `${hex(host, 8)}:${hex(port, 4)}`;
}

const hex = (value: number, digits: number) =>
  value.toString(16).toUpperCase().padStart(digits, '0');

/** The receive queue, in bytes, of the UDP socket at `key` (procNetKey) in a /proc/net/udp text. */
export function receiveQueueBytes(procNetUdp: string, key: string): number | undefined {
  for (const line of procNetUdp.split('\n')) {
    // "  sl  local_address rem_address st tx_queue:rx_queue ..."
    const fields = line.trim().split(/\s+/);
    if (fields[1] !== key) continue;
    const queues = fields[4]?.split(':');
    return queues?.[1] === undefined ? undefined : Number.parseInt(queues[1], 16);
  }
  return undefined;
}

/**
 * Whether datagrams have arrived at a socket and wait there unread, and since when: the kernel's
 * count of the socket's receive queue (/proc/net/udp, Linux). A node that falls behind reading
 * (its CPU taken, its process stalled) holds in that queue versions its peers sent it; their ages
 * grow, and sync would send them again as if lost, adding work to the node that is short of CPU.
 * With this a node tells "arrived, not yet read" from "lost" (see `askedGraceMs`). Where the
 * file or the socket's line is missing (not Linux), nothing is ever seen waiting.
 */
export class UnreadDatagrams {
  readonly #key: string;
  #emptyAt = Date.now();

  constructor(
    addr: string,
    private readonly read: () => string = () => readFileSync('/proc/net/udp', 'latin1'),
  ) {
    this.#key = procNetKey(addr);
  }

  /** The bytes waiting unread now (0 when unknown). */
  bytes(): number {
    let text: string;
    try {
      text = this.read();
    } catch {
      return 0;
    }
    return receiveQueueBytes(text, this.#key) ?? 0;
  }

  /**
   * 0 while the receive queue is (nearly) empty; else the milliseconds since it last was, as
   * far as these calls saw: everything in it arrived since then. Read once per sync, not per
   * datagram (a read of /proc/net/udp costs tens of microseconds).
   */
  behindMs(now = Date.now()): number {
    if (this.bytes() <= nearlyEmptyBytes) {
      this.#emptyAt = now;
      return 0;
    }
    return now - this.#emptyAt;
  }
}
