/**
 * The lock word of SharedRwLock, with parking_lot's RawRwLock layout in one 32-bit integer:
 *
 *   bit 0  PARKED_BIT         threads are parked waiting for a writer to leave
 *   bit 1  WRITER_PARKED_BIT  the writer holding WRITER_BIT is parked until readers drain
 *   bit 3  WRITER_BIT         a writer holds the lock, or is waiting for readers to drain
 *   4..31  reader count       (ONE_READER = 1 << 4)
 *
 * Every transition is a compare-and-swap from an observed word to a word computed from it, and
 * bits are cleared with `& ~bit`, never subtracted: clearing twice is harmless. That is the
 * parking_lot #465 lesson (seed 001): a writer whose timeout fired while the last reader was
 * waking it cleared its bits a second time and corrupted the word.
 *
 * Each `try*` returns `true` when done, or the word value to park on (Atomics.wait) before
 * trying again.
 */
export const PARKED_BIT = 0b0001;
export const WRITER_PARKED_BIT = 0b0010;
export const WRITER_BIT = 0b1000;
export const ONE_READER = 0b1_0000;

export function readerCount(word: number): number {
  return word >>> 4;
}

function cas(word: Int32Array, from: number, to: number): boolean {
  return Atomics.compareExchange(word, 0, from, to) === from;
}

/** Parks behind a writer: sets PARKED_BIT (once) and returns the value to wait on. */
function parkBehindWriter(word: Int32Array, seen: number): number | undefined {
  if (seen & PARKED_BIT) return seen;
  return cas(word, seen, seen | PARKED_BIT) ? seen | PARKED_BIT : undefined;
}

export function tryRead(word: Int32Array): true | number {
  for (;;) {
    const seen = Atomics.load(word, 0);
    if (!(seen & WRITER_BIT)) {
      if (cas(word, seen, seen + ONE_READER)) return true;
      continue;
    }
    const park = parkBehindWriter(word, seen);
    if (park !== undefined) return park;
  }
}

export function unlockRead(word: Int32Array): void {
  for (;;) {
    const seen = Atomics.load(word, 0);
    let next = seen - ONE_READER;
    const lastReaderBeforeWriter = readerCount(next) === 0 && (next & WRITER_PARKED_BIT) !== 0;
    if (lastReaderBeforeWriter) next &= ~WRITER_PARKED_BIT;
    if (!cas(word, seen, next)) continue;
    if (lastReaderBeforeWriter) Atomics.notify(word, 0);
    return;
  }
}

/** Phase 1 of a write: take WRITER_BIT (new readers now wait). */
export function tryWriterBit(word: Int32Array): true | number {
  for (;;) {
    const seen = Atomics.load(word, 0);
    if (!(seen & WRITER_BIT)) {
      if (cas(word, seen, seen | WRITER_BIT)) return true;
      continue;
    }
    const park = parkBehindWriter(word, seen);
    if (park !== undefined) return park;
  }
}

/** Phase 2 of a write: wait for the readers already inside to leave. */
export function tryDrain(word: Int32Array): true | number {
  for (;;) {
    const seen = Atomics.load(word, 0);
    if (readerCount(seen) === 0) {
      if (!(seen & WRITER_PARKED_BIT) || cas(word, seen, seen & ~WRITER_PARKED_BIT)) return true;
      continue;
    }
    if (seen & WRITER_PARKED_BIT) return seen;
    if (cas(word, seen, seen | WRITER_PARKED_BIT)) return seen | WRITER_PARKED_BIT;
  }
}

/**
 * A writer's timeout in phase 2. If the readers drained meanwhile (the wake-up raced the
 * timeout) the write lock is simply taken: returns true. Otherwise WRITER_BIT and both parked
 * bits are cleared — idempotently — and every parked thread is woken to try again.
 */
export function abandonWrite(word: Int32Array): boolean {
  for (;;) {
    const seen = Atomics.load(word, 0);
    if (readerCount(seen) === 0) {
      if (cas(word, seen, seen & ~WRITER_PARKED_BIT)) return true;
      continue;
    }
    if (cas(word, seen, seen & ~(WRITER_BIT | WRITER_PARKED_BIT | PARKED_BIT))) {
      Atomics.notify(word, 0);
      return false;
    }
  }
}

export function unlockWrite(word: Int32Array): void {
  for (;;) {
    const seen = Atomics.load(word, 0);
    if (!cas(word, seen, seen & ~(WRITER_BIT | PARKED_BIT))) continue;
    if (seen & PARKED_BIT) Atomics.notify(word, 0);
    return;
  }
}
