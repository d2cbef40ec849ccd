import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type CpuCounters,
  type HostLoad,
  loadBetween,
  type NetworkCounters,
  parseNetDev,
  parseProcStat,
} from './host-load.js';

/** One reading of the counters, with when it was taken. */
interface Reading {
  cpu: CpuCounters;
  network: NetworkCounters;
  atMs: number;
}

/** Bound on reading both files: a hung /proc (an unresponsive FUSE mount) skips samples. */
const readTimeoutMs = 2_000;

/**
 * Reads `<procRoot>/stat` and `<procRoot>/net/dev` every `intervalMs` and reports the host's
 * load between consecutive readings. A reading still in flight makes the next tick skip (one at
 * a time); a file that cannot be read or parsed is reported as an error and the previous
 * reading kept, so one bad sample never makes up a load; so is a reading in which no CPU time
 * passed.
 */
export class HostSampler {
  readonly #timer: NodeJS.Timeout;
  #previous: Reading | undefined;
  #reading = false;
  #closed = false;

  constructor(
    readonly procRoot: string,
    readonly intervalMs: number,
    private readonly report: (load: HostLoad | Error) => void,
  ) {
    this.#timer = setInterval(() => void this.#sample(), intervalMs);
    this.#timer.unref();
    void this.#sample();
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
  }

  async #sample(): Promise<void> {
    if (this.#reading) return;
    this.#reading = true;
    let reading: Reading;
    try {
      const signal = AbortSignal.timeout(readTimeoutMs);
      const [stat, netDev] = await Promise.all([
        readFile(join(this.procRoot, 'stat'), { encoding: 'utf8', signal }),
        readFile(join(this.procRoot, 'net', 'dev'), { encoding: 'utf8', signal }),
      ]);
      reading = { cpu: parseProcStat(stat), network: parseNetDev(netDev), atMs: Date.now() };
    } catch (error) {
      if (!this.#closed) this.report(error as Error);
      return;
    } finally {
      this.#reading = false;
    }
    if (this.#closed) return;
    const previous = this.#previous;
    // No CPU time elapsed since the last reading (a /proc that did not move: a paused fixture,
    // a frozen container): no knowledge of the load, so neither a sample nor a new baseline.
    if (previous !== undefined && reading.cpu.totalJiffies === previous.cpu.totalJiffies) return;
    this.#previous = reading;
    if (previous !== undefined)
      this.report(loadBetween(previous, reading, reading.atMs - previous.atMs));
  }
}
