import { flydError } from '../errors.js';
import type { FsmEngine } from '../fsm/engine.js';

/**
 * Operations that arrive while another holds their machine (a stop right after a create's launch,
 * a start while a stop records) wait for it instead of failing. Bounded: at most `waitMs`, and at
 * most `waitersMax` callers wait for one machine; past either, 409 FLYD_ERR_CONFLICT names the
 * operation in the way (`--busy-wait-ms`, `--busy-waiters-max`).
 */
export class BusyWaits {
  /** Operations waiting, by machine. */
  readonly #waiting = new Map<string, number>();

  constructor(
    private readonly engine: FsmEngine,
    private readonly waitMs: number,
    private readonly waitersMax: number,
  ) {}

  /**
   * Resolves once no run holds the machine. The caller checks the machine's state after this
   * returns (it may have changed while waiting), and starts its run in the same synchronous step.
   */
  async whenFree(id: string): Promise<void> {
    if (!this.engine.isBusy(id)) return;
    const waiting = this.#waiting.get(id) ?? 0;
    const busy = () =>
      flydError('FLYD_ERR_CONFLICT', `machine ${id} is ${this.engine.busyWith(id)}`);
    if (waiting >= this.waitersMax) {
      const refusal = busy();
      refusal.message += ` (${waiting} operations wait for it already; --busy-waiters-max)`;
      throw refusal;
    }
    this.#waiting.set(id, waiting + 1);
    const deadline = Date.now() + this.waitMs;
    try {
      while (this.engine.isBusy(id)) {
        const leftMs = deadline - Date.now();
        if (leftMs <= 0) {
          const refusal = busy();
          refusal.message += ` (waited ${this.waitMs} ms for it; --busy-wait-ms)`;
          throw refusal;
        }
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          this.engine.settled(id),
          new Promise((resolve) => {
            timer = setTimeout(resolve, leftMs);
          }),
        ]);
        clearTimeout(timer);
      }
    } finally {
      const left = (this.#waiting.get(id) ?? 1) - 1;
      if (left > 0) this.#waiting.set(id, left);
      else this.#waiting.delete(id);
    }
  }
}
