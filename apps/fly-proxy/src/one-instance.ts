import { join } from 'node:path';
import { type Logger, lockState, type StateLock, StateLockedError } from '@fleet/service';

/** How often a standby tries the lock again. */
const standbyRetryMs = 250;

/**
 * Seed 004: two proxies on one host each thought they were the one, and split the host's
 * traffic and budget. A proxy takes the exclusive lock of its state directory before it listens:
 * a second one on the same directory exits naming the first (runMain), or with `--standby` waits
 * until the lock is free (the first stopped or died: the kernel drops the lock with it) and then
 * starts. The lock is the kernel's, so a killed holder never leaves a stale one behind.
 */
export async function becomeTheInstance(
  stateDir: string,
  standby: boolean,
  logger: Logger,
): Promise<StateLock> {
  const path = join(stateDir, 'fly-proxy.lock');
  for (let waiting = false; ; waiting = true) {
    try {
      const lock = lockState(path, 'fly-proxy');
      if (waiting) logger.warn({ lock: path }, 'standby: the active proxy is gone; taking over');
      return lock;
    } catch (error) {
      if (!(error instanceof StateLockedError) || !standby) throw error;
      if (!waiting)
        logger.warn({ lock: path, holder: error.holder }, 'standby: another proxy is active here');
      await new Promise((resolve) => setTimeout(resolve, standbyRetryMs));
    }
  }
}
