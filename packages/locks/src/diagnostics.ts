import diagnosticsChannel from 'node:diagnostics_channel';

/**
 * Every diagnostics_channel of @fleet/locks, declared in one place. Each message is
 * `{ lock, label, mode, context, ... }`. Publishers check `hasSubscribers` first, so an
 * unobserved lock builds no message.
 */
export const lockChannels = {
  /** A request was granted: `waitMs` says how long it queued. */
  granted: diagnosticsChannel.channel('fleet:locks:granted'),
  /** A holder released: `heldMs`. */
  released: diagnosticsChannel.channel('fleet:locks:released'),
  /** A waiter gave up: `code` is LOCK_ERR_TIMEOUT or LOCK_ERR_CANCELLED. */
  abandoned: diagnosticsChannel.channel('fleet:locks:abandoned'),
  /** A re-entrant request was refused: `heldLabel`, `heldMode`. */
  reentry: diagnosticsChannel.channel('fleet:locks:reentry'),
} as const;
