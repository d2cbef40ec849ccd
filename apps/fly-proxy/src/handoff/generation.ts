import cluster from 'node:cluster';
import { isMessage, type ToGeneration, type ToWatchdog } from './messages.js';

/**
 * Whether this proxy is a generation run by fly-proxy-watchdog (a `cluster` worker): its
 * listeners are then the watchdog's shared handles, the watchdog holds the instance lock for it,
 * and its control socket is its own (`generation-<pid>.sock`, published as `control.sock`).
 */
export const supervised = cluster.isWorker;

export function tellWatchdog(message: ToWatchdog): void {
  if (supervised && process.connected) process.send?.(message);
}

export function onWatchdog(handler: (message: ToGeneration) => void): void {
  if (!supervised) return;
  process.on('message', (message: unknown) => {
    if (isMessage<ToGeneration>(message)) handler(message);
  });
}
