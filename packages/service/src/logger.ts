import { type Logger, pino } from 'pino';

export type { Logger };

/**
 * Structured JSON logs on stdout. The level comes from LOG_LEVEL (default info). Every server
 * announces each listener with `{"event":"listening","listener":...,"url":...}`, which the fleet
 * launcher reads to learn ephemeral ports.
 */
export function createLogger(name: string): Logger {
  return pino({ name, level: process.env.LOG_LEVEL ?? 'info' });
}
