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

/** The TLS session ticket keys the watchdog shares with every generation; undefined standalone. */
export function sharedTicketKeys(): Buffer | undefined {
  const file = process.env[ticketKeysFileVariable];
  if (!supervised || file === undefined || file === '') return undefined;
  return readTicketKeys(file);
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
