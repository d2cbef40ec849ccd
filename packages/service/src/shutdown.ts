import { drainStdout } from './log-destination.js';
import type { Logger } from './logger.js';
import { watchParent } from './parent.js';

export interface ShutdownOptions {
  /** After this long the process exits even if closing has not finished. */
  timeoutMs?: number;
}

/** Bound on waiting, once closed, for the last log lines to reach a slow stdout. */
const logDrainMsMax = 500;

/**
 * Runs `close` once on SIGTERM or SIGINT — or when the supervisor that started this server is
 * gone (`FLEET_PARENT_FD`, see parent.ts) — then exits 0 (1 if closing failed or overran the
 * timeout). A second signal while closing exits at once. Nothing here waits on stdout beyond a
 * short bound, so a stdout nobody reads cannot make the server outlive `timeoutMs`.
 */
export function onShutdown(
  logger: Logger,
  close: () => Promise<void>,
  options: ShutdownOptions = {},
): void {
  const timeoutMs = options.timeoutMs ?? 10_000;
  let closing = false;
  const handler = (signal: NodeJS.Signals | 'parent-gone') => {
    if (closing) {
      // The supervisor going away while this server closes changes nothing: closing is bounded.
      if (signal === 'parent-gone') return;
      logger.warn({ signal }, 'second signal while shutting down: exiting now');
      process.exit(1);
    }
    closing = true;
    logger.info({ event: 'shutdown', signal }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error({ timeoutMs }, 'shutdown overran its timeout: exiting');
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    close().then(
      async () => {
        logger.info({ event: 'stopped' }, 'stopped');
        await drainStdout(logDrainMsMax);
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  watchParent(() => {
    logger.warn({ event: 'parent_gone' }, 'the process that started this server is gone');
    handler('parent-gone');
  });
}
