import type { Logger } from './logger.js';

export interface ShutdownOptions {
  /** After this long the process exits even if closing has not finished. */
  timeoutMs?: number;
}

/**
 * Runs `close` once on SIGTERM or SIGINT, then exits 0 (1 if closing failed or overran the
 * timeout). A second signal while closing exits at once.
 */
export function onShutdown(
  logger: Logger,
  close: () => Promise<void>,
  options: ShutdownOptions = {},
): void {
  const timeoutMs = options.timeoutMs ?? 10_000;
  let closing = false;
  const handler = (signal: NodeJS.Signals) => {
    if (closing) {
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
      () => {
        logger.info({ event: 'stopped' }, 'stopped');
        logger.flush();
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
}
