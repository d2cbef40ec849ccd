import { backoffMs } from '@fleet/service';
import type { ExitInfo } from '../runtime/process-runtime.js';
import type { MachineConfig } from './machine-store.js';

export type AfterExit =
  | { action: 'restart'; delayMs: number }
  | { action: 'destroy' }
  | { action: 'stay-stopped' };

/** Fly's default: restart a machine that fails, up to 10 times. */
const defaultMaxRetries = 10;
const retryDelayMsMax = 5_000;

/**
 * What to do when a machine's process exits on its own, after Fly's restart policy:
 * `always` restarts, `on-failure` (the default) restarts a non-zero exit or a signal up to
 * `max_retries` times, `no` leaves it stopped; `auto_destroy` destroys it instead. Restarts back
 * off from 100 ms, doubling, up to 5 s, with jitter (see @fleet/service's backoffMs).
 */
export function afterExit(config: MachineConfig, exit: ExitInfo, restartsSoFar: number): AfterExit {
  if (config.auto_destroy === true) return { action: 'destroy' };
  const policy = config.restart?.policy ?? 'on-failure';
  const failed = exit.code !== 0 || exit.signal !== null;
  const wanted = policy === 'always' || (policy === 'on-failure' && failed);
  const maxRetries = config.restart?.max_retries ?? defaultMaxRetries;
  if (!wanted || (policy === 'on-failure' && restartsSoFar >= maxRetries))
    return { action: 'stay-stopped' };
  return {
    action: 'restart',
    delayMs: backoffMs(restartsSoFar, { baseMs: 100, maxMs: retryDelayMsMax }),
  };
}
