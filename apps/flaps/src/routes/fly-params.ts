import { durationMs, signalName } from '@fleet/machine-config';
import { flapsError } from '../errors.js';

/** A signal as Fly's clients send it (`SIGTERM`, `TERM`, `15`). */
export function signalOf(value: string | number): string {
  const name = signalName(value);
  if (name === undefined)
    throw flapsError(
      'FLAPS_ERR_BAD_REQUEST',
      `signal ${JSON.stringify(value)} is not a signal name or number`,
    );
  return name;
}

/** Seconds as Fly's clients send them: a number, or a Go duration (`10s`, `1m30s`). */
export function seconds(value: number | string, field: string): number {
  const ms = durationMs(value);
  if (ms === undefined)
    throw flapsError('FLAPS_ERR_BAD_REQUEST', `${field} must be seconds (a number, or like 10s)`);
  return ms / 1000;
}

/**
 * A stop or restart timeout as Fly's clients send it, in seconds. fly-go sends `"timeout": "0s"`
 * when its caller set none: that, like no timeout at all, leaves the machine's own grace period
 * (its `stop_config`, else flyd's default) rather than killing at once.
 */
export function graceSeconds(raw: number | string | undefined): number | undefined {
  return raw === undefined ? undefined : seconds(raw, 'timeout') || undefined;
}

/**
 * A query parameter Fly's clients send as a list, repeated (`state=a&state=b`, fly-go) or
 * comma-separated (`state=a,b`): its items.
 */
export function listParam(value: string | string[]): string[] {
  return [value].flat().flatMap((one) => one.split(','));
}
