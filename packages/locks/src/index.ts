export { LockCore } from './core.js';
export { lockChannels } from './diagnostics.js';
export { LockError, type LockErrorCode, LockErrorCodes } from './errors.js';
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
export { SharedRwLock, type TryResult } from './shared-rwlock.js';
