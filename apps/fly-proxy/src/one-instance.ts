import { join } from 'node:path';
import {
  type Logger,
  lockState,
  type StateLock,
  StateLockedError,
  stateLockHolder,
  UsageError,
} from '@fleet/service';

/** How often a standby tries the lock again. */
const standbyRetryMs = 250;

export const instanceLockName = 'fly-proxy.lock';
/** The name a watchdog holds the instance lock under, for its generations. */
export const watchdogHolderName = 'fly-proxy-watchdog';

export type Instance =
  /** This process holds the lock: the one active proxy. */
  | { kind: 'active'; lock: StateLock }
  /** The watchdog that started this generation holds the lock for it (zero-drop restarts). */
  | { kind: 'generation'; lock: undefined }
  /** Forced beside the active one: runs under strict Airtime limits (see airtime/). */
  | { kind: 'strict-second'; lock: undefined; holder: string };

/**
 * Seed 004: two proxies on one host each thought they were the one, and split the host's
 * traffic and budget. A proxy takes the exclusive lock of its state directory before it listens:
 * a second one on the same directory exits naming the first (runMain), or with `--standby` waits
 * until the lock is free (the first stopped or died: the kernel drops the lock with it) and then
 * starts, or with `--strict-second-instance` runs beside it in strict mode. The lock is the
 * kernel's, so a killed holder never leaves a stale one behind.
 *
 * A generation run by fly-proxy-watchdog takes no lock: its watchdog holds it for every
 * generation it runs, so two generations overlap during a handoff while an unrelated proxy (or
 * a second watchdog) is still refused. The generation checks that the holder is its parent.
 */
export async function becomeTheInstance(
  stateDir: string,
  options: { standby: boolean; strictSecond: boolean; generation: boolean },
  logger: Logger,
): Promise<Instance> {
  const path = join(stateDir, instanceLockName);
  if (options.generation) {
    const holder = stateLockHolder(path);
    if (holder?.pid !== process.ppid || holder.name !== watchdogHolderName) {
      throw new UsageError(
        `a watchdog's proxy needs its watchdog (pid ${process.ppid}) to hold ${path}; it is held by ${holder ? `${holder.name} (pid ${holder.pid})` : 'nobody'}`,
      );
    }
    return { kind: 'generation', lock: undefined };
  }
  for (let waiting = false; ; waiting = true) {
    try {
      const lock = lockState(path, 'fly-proxy');
      if (waiting) logger.warn({ lock: path }, 'standby: the active proxy is gone; taking over');
      return { kind: 'active', lock };
    } catch (error) {
      if (!(error instanceof StateLockedError)) throw error;
      if (options.strictSecond) {
        const holder = error.holder
          ? `${error.holder.name} (pid ${error.holder.pid})`
          : 'another process';
        logger.error(
          { event: 'strict_second_instance', lock: path, holder: error.holder },
          'another proxy is active on this state directory: running as a second instance in strict mode',
        );
        return { kind: 'strict-second', lock: undefined, holder };
      }
      if (!options.standby) throw error;
      if (!waiting)
        logger.warn({ lock: path, holder: error.holder }, 'standby: another proxy is active here');
      await new Promise((resolve) => setTimeout(resolve, standbyRetryMs));
    }
  }
}
