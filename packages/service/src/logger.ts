import { type Logger, pino } from 'pino';
import { LogDestination, logBufferBytesMaxDefault } from './log-destination.js';

export type { Logger };

export interface LoggerOptions {
  /**
   * Log output that may wait for a slow stdout; past it lines are dropped and counted
   * (`log_lines_dropped_total`). Default 1 MiB, or `LOG_BUFFER_BYTES_MAX`.
   */
  bufferBytesMax?: number;
}

/**
 * Structured JSON logs on stdout. The level comes from LOG_LEVEL (default info). Every server
 * announces each listener with `{"event":"listening","listener":...,"url":...}`, which the fleet
 * launcher reads to learn ephemeral ports. A stdout that is closed or not read never blocks the
 * server: see `log-destination.ts`.
 */
export function createLogger(name: string, options: LoggerOptions = {}): Logger {
  const fromEnv = Number(process.env.LOG_BUFFER_BYTES_MAX);
  const bufferBytesMax =
    options.bufferBytesMax ??
    (Number.isSafeInteger(fromEnv) && fromEnv > 0 ? fromEnv : logBufferBytesMaxDefault);
  return pino(
    { name, level: process.env.LOG_LEVEL ?? 'info' },
    new LogDestination(name, bufferBytesMax),
  );
}
