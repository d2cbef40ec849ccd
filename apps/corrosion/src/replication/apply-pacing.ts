/**
 * How long the apply queue lets a batch gather. A batch costs a transaction and a commit whatever
 * its size, so a changeset applied in a batch of 10 costs about half again as much CPU as one in a
 * batch of 50 (`bench/receive.mjs`). While changesets arrive slowly the wait stays at its floor
 * (latency is the point then); while they arrive fast, every node of the cluster receives every
 * write and CPU is what runs out, so the wait doubles, bounded, and batches grow with it.
 */
export interface ApplyPacing {
  /** The wait while arrivals are slow: the shortest a batch gathers. */
  delayMsMin: number;
  /** The longest a batch gathers, however fast changesets arrive. */
  delayMsMax: number;
  /**
   * Arrivals per second from which the wait grows; below half of it the wait shrinks back.
   * Between the two it stays, so a rate near the threshold does not flip it every batch.
   */
  deepPerSecond: number;
}

/**
 * The next batch's wait, from this one's: `queued` changesets were waiting when the batch ran,
 * `waitedMs` after the first of them arrived.
 */
export function nextDelayMs(
  pacing: ApplyPacing,
  delayMs: number,
  queued: number,
  waitedMs: number,
): number {
  const perSecond = (queued * 1000) / Math.max(waitedMs, 1);
  if (perSecond >= pacing.deepPerSecond) return Math.min(pacing.delayMsMax, delayMs * 2);
  if (perSecond < pacing.deepPerSecond / 2) return Math.max(pacing.delayMsMin, delayMs / 2);
  return delayMs;
}
