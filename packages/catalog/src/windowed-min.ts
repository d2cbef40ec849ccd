/**
 * The least of the samples taken within about the last `windowMs` (three quarters of it at least;
 * the newest always counts), kept in at most four slots of a quarter window each: O(1) memory
 * however often samples come.
 *
 * Routing wants a host's distance, not its queueing: a PING that waited for a TCP
 * retransmission over a lossy link measures the retransmission timeout (200 ms and up), and a
 * smoothed mean (TCP's SRTT) then ranks the host far for minutes after the loss ended. The
 * windowed minimum ignores such a sample while a clean one lies within the window, and still
 * follows a path that really grew longer once the window has passed (as BBR's min_rtt filter).
 */
export class WindowedMin {
  readonly #slots: { startMs: number; min: number }[] = [];

  constructor(private readonly windowMs: number) {}

  /** Adds a sample taken at `nowMs` and answers the windowed minimum. */
  add(value: number, nowMs: number): number {
    const slots = this.#slots;
    const kept = slots.findIndex((slot) => slot.startMs > nowMs - this.windowMs);
    slots.splice(0, kept === -1 ? slots.length : kept);
    const last = slots.at(-1);
    if (last !== undefined && nowMs - last.startMs < this.windowMs / 4)
      last.min = Math.min(last.min, value);
    else slots.push({ startMs: nowMs, min: value });
    let min = value;
    for (const slot of slots) min = Math.min(min, slot.min);
    return min;
  }
}
