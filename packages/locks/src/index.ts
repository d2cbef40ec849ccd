export { LockCore } from './core.js';
export { lockChannels } from './diagnostics.js';
export { LockError, type LockErrorCode, LockErrorCodes } from './errors.js';
export { meterName } from './metrics.js';
export {
  type AcquireOptions,
  type HolderInfo,
  type LockContext,
  type LockLogger,
  type LockMode,
  type LockSnapshot,
  RwLock,
  type RwLockOptions,
} from './rwlock.js';
export { SharedRwLock, type SharedRwLockOptions, type TryResult } from './shared-rwlock.js';
export { bucketBoundsMs } from './stats.js';
