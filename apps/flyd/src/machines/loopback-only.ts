import { readFileSync } from 'node:fs';

/** `/proc/net/tcp`'s state of a listening socket. */
const listening = '0A';

/**
 * Whether process `pid`'s network has sockets listening on `port` at loopback addresses only
 * (127.x or ::1) — the Fly classic: a server told to listen on localhost, which in a machine's own
 * network nothing outside reaches. From /proc/<pid>/net/tcp{,6}, which show the sockets of the
 * process's network namespace.
 */
export function listensOnLoopbackOnly(pid: number, port: number): boolean {
  const addresses: string[] = [];
  for (const file of ['tcp', 'tcp6']) {
    let table: string;
    try {
      table = readFileSync(`/proc/${pid}/net/${file}`, 'utf8');
    } catch {
      return false; // the process is gone
    }
    for (const line of table.split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      const [address, hexPort] = (local ?? '').split(':');
      if (state === listening && address && Number.parseInt(hexPort ?? '', 16) === port)
        addresses.push(address);
    }
  }
  return addresses.length > 0 && addresses.every(isLoopback);
}

/** 127.0.0.0/8 (little-endian hex: the first byte last) or ::1. */
function isLoopback(hex: string): boolean {
  return hex.length === 8 ? hex.endsWith('7F') : hex === '00000000000000000000000001000000';
}
