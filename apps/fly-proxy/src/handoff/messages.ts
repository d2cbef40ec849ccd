/**
 * What the watchdog and the proxy generations it runs say to each other over the IPC channel of
 * `cluster.fork` (see the README's "Restarts without dropping").
 */
export type ToGeneration =
  /** Stop accepting and finish open connections, then exit 0 (a successor took the sockets). */
  | { type: 'fleet:drain'; reason: string }
  /** The ticket keys file was rotated: read it again. */
  | { type: 'fleet:ticket-keys-rotated' };

export type ToWatchdog =
  /** Every listener is bound (on the watchdog's shared handles) and the control socket answers. */
  | { type: 'fleet:ready' }
  /** An operator asked this generation (`proxyctl restart`) for a restart without dropping. */
  | { type: 'fleet:restart'; reason: string }
  /** The drain started; past `deadlineMs` (plus the watchdog's grace) the watchdog kills it. */
  | { type: 'fleet:draining'; deadlineMs: number };

/** A supervised generation's own control socket in the state directory. */
export function generationSocketName(pid: number): string {
  return `generation-${pid}.sock`;
}

/** The environment variable naming the TLS ticket keys file the watchdog shares. */
export const ticketKeysFileVariable = 'FLEET_TLS_TICKET_KEYS_FILE';

export function isMessage<T extends { type: string }>(value: unknown): value is T {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { type?: unknown }).type === 'string' &&
    (value as { type: string }).type.startsWith('fleet:')
  );
}
