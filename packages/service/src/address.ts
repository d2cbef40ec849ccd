import { UsageError } from './usage-error.js';

export interface ListenAddress {
  host: string;
  port: number;
}

/** Parses `host:port` (port 0 asks the kernel for a free one); IPv6 hosts go in brackets. */
export function parseListenAddress(text: string): ListenAddress {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : Number.NaN;
  if (!match || port > 65535) {
    throw new UsageError(`listen address must be host:port, got ${JSON.stringify(text)}`);
  }
  return { host: (match[1] ?? match[2]) as string, port };
}
