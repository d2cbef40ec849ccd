import type { Server as TlsServer } from 'node:tls';
import { ControlError } from '../control/errors.js';
import { controlSocketName } from '../control/protocol.js';
import type { Instance } from '../one-instance.js';
import { supervised, tellWatchdog } from './generation.js';
import { generationSocketName, ticketKeysFileVariable } from './messages.js';
import { readTicketKeys } from './ticket-keys.js';

/**
 * The control socket's name in the state directory: `control.sock` for the active proxy; a
 * watchdog's generation binds its own (the watchdog publishes the serving one as
 * `control.sock`); a strict second instance its own too (the active one keeps `control.sock`).
 */
export function controlSocketFor(instance: Instance): string {
  if (instance.kind === 'generation') return generationSocketName(process.pid);
  if (instance.kind === 'strict-second') return `second-${process.pid}.sock`;
  return controlSocketName;
}

/**
 * Gives `server` the TLS session ticket keys the watchdog shares with every generation (nothing
 * when run alone: Node's random keys). Called once the server listens, and again when the keys
 * are rotated. After listening, because a `cluster` worker that listens on a handle the primary
 * already holds is handed the ticket keys of the first worker that listened on it (Node's
 * `_setServerData`): without this, every generation after a rotation would go back to the keys
 * the handle was first bound with, and the rotation would not hold.
 */
export function applySharedTicketKeys(server: Pick<TlsServer, 'setTicketKeys'>): void {
  const file = process.env[ticketKeysFileVariable];
  if (!supervised || file === undefined || file === '') return;
  server.setTicketKeys(readTicketKeys(file));
}

/** `proxyctl restart`: only a watchdog can start the successor that takes the sockets. */
export function askWatchdogForRestart() {
  if (!supervised) {
    throw new ControlError(
      'CONTROL_ERR_NOT_SUPERVISED',
      'this proxy is not run by fly-proxy-watchdog: drain it (proxyctl drain) and start a new one',
    );
  }
  tellWatchdog({ type: 'fleet:restart', reason: 'proxyctl' });
  return { restarting: true, watchdogPid: process.ppid };
}
