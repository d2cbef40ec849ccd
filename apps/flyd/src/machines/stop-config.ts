import { durationMs, signalName } from '@fleet/machine-config';
import { flydError } from '../errors.js';
import type { MachineConfig } from './machine-store.js';

/** The longest grace period a config may ask for (the stop API's own bound). */
export const stopTimeoutMsMax = 600_000;

/** How to stop a machine: the signal first, then SIGKILL after the grace period. */
export interface StopSettings {
  signal?: NodeJS.Signals;
  timeoutMs?: number;
}

/**
 * The machine config's `stop_config` (Fly's: `{signal, timeout}`, the signal as a name like
 * `SIGINT` or a number, the timeout as a Go duration like `30s` or a number of seconds) as stop
 * settings; what it leaves out is undefined. A config that asks for something flyd cannot do is
 * refused with 400 FLYD_ERR_BAD_CONFIG naming the field.
 */
export function stopConfigOf(config: MachineConfig): StopSettings {
  const stop = config.stop_config;
  if (stop === undefined || stop === null) return {};
  if (typeof stop !== 'object')
    throw flydError('FLYD_ERR_BAD_CONFIG', 'config.stop_config must be an object');
  return { signal: signalOf(stop.signal), timeoutMs: timeoutOf(stop.timeout) };
}

function signalOf(value: unknown): NodeJS.Signals | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const name =
    typeof value === 'number' || typeof value === 'string' ? signalName(value) : undefined;
  if (name) return name;
  throw flydError(
    'FLYD_ERR_BAD_CONFIG',
    `config.stop_config.signal: ${JSON.stringify(value)} is not a signal (e.g. SIGINT)`,
  );
}

function timeoutOf(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const timeoutMs =
    typeof value === 'number' || typeof value === 'string' ? durationMs(value) : undefined;
  if (timeoutMs === undefined)
    throw flydError(
      'FLYD_ERR_BAD_CONFIG',
      `config.stop_config.timeout: ${JSON.stringify(value)} is not a duration like 10s`,
    );
  if (!(timeoutMs <= stopTimeoutMsMax))
    throw flydError(
      'FLYD_ERR_BAD_CONFIG',
      `config.stop_config.timeout: at most ${stopTimeoutMsMax / 1000} s, not ${timeoutMs / 1000} s`,
    );
  return timeoutMs;
}

/**
 * The signal and grace period a stop uses: the caller's, else the config's `stop_config`, else
 * SIGTERM and flyd's `--stop-timeout-ms`.
 */
export function stopSettings(
  asked: StopSettings,
  config: MachineConfig,
  defaultTimeoutMs: number,
): { signal: NodeJS.Signals; timeoutMs: number } {
  const configured = stopConfigOf(config);
  return {
    signal: asked.signal ?? configured.signal ?? 'SIGTERM',
    timeoutMs: asked.timeoutMs ?? configured.timeoutMs ?? defaultTimeoutMs,
  };
}
