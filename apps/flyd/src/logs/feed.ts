import type { LogLine } from '@fleet/flyd-client';
import { logMetrics } from '../metrics.js';

/** Which lines a reader wants: one app's, or one machine's. */
export interface LogFilter {
  app?: string;
  machineId?: string;
}

export interface LogFeedOptions {
  region: string;
  /** The app of a machine (read once per machine: it never changes). */
  appOf: (machineId: string) => string | undefined;
  /** Lines kept per machine. */
  linesPerMachine?: number;
  /** Longer lines are cut to this many characters. */
  lineCharsMax?: number;
  /** Lines held for a follower whose reader pushes back; past it they are dropped and counted. */
  followerQueueMax?: number;
}

/**
 * Every machine's recent output on this worker, and the live lines for whoever follows them:
 * the last `linesPerMachine` lines of each machine, numbered in one sequence so a reader can ask
 * for what came after the last line it saw, across machines and across polls. A follower whose
 * reader is slow holds at most `followerQueueMax` lines; past that its lines are dropped,
 * counted (`flyd_log_lines_dropped_total{reason="slow_follower"}`), and the next line it gets
 * says how many it missed. A machine never waits for a reader.
 */
export class LogFeed {
  readonly #rings = new Map<string, LogLine[]>();
  readonly #apps = new Map<string, string>();
  readonly #followers = new Set<LogFollower>();
  readonly #linesPerMachine: number;
  readonly #lineCharsMax: number;
  readonly #followerQueueMax: number;
  #lastSeq = 0;

  constructor(private readonly options: LogFeedOptions) {
    this.#linesPerMachine = options.linesPerMachine ?? 1_000;
    this.#lineCharsMax = options.lineCharsMax ?? 8_192;
    this.#followerQueueMax = options.followerQueueMax ?? 1_000;
  }

  append(machineId: string, stream: LogLine['stream'], message: string): void {
    // Microseconds of the wall clock, kept increasing: numbers stay ordered across a restart.
    this.#lastSeq = Math.max(this.#lastSeq + 1, Date.now() * 1_000);
    const cut = message.length > this.#lineCharsMax;
    if (cut) logMetrics().truncated.add(1);
    const line: LogLine = {
      seq: this.#lastSeq,
      timestamp: Date.now(),
      machine_id: machineId,
      app: this.#appOf(machineId),
      region: this.options.region,
      stream,
      message: cut ? `${message.slice(0, this.#lineCharsMax)}…` : message,
      ...(cut ? { truncated: true as const } : {}),
    };
    const ring = this.#rings.get(machineId) ?? [];
    this.#rings.set(machineId, ring);
    ring.push(line);
    if (ring.length > this.#linesPerMachine) ring.shift();
    for (const follower of this.#followers)
      if (matches(line, follower.filter)) follower.offer(line);
  }

  /** The machine's kept lines, oldest first. */
  machineLines(machineId: string): LogLine[] {
    return [...(this.#rings.get(machineId) ?? [])];
  }

  /** Kept lines that match `filter` and came after `after`, oldest first, at most `limit`. */
  read(filter: LogFilter, after: number, limit: number): LogLine[] {
    const lines: LogLine[] = [];
    for (const [machineId, ring] of this.#rings) {
      if (filter.machineId !== undefined && machineId !== filter.machineId) continue;
      for (const line of ring) if (line.seq > after && matches(line, filter)) lines.push(line);
    }
    return lines.sort((a, b) => a.seq - b.seq).slice(0, limit);
  }

  /**
   * Sends the kept lines after `after`, then every new line matching `filter`, to `write` until
   * closed. `write` returns false while its reader pushes back; call `resume` once it drained.
   */
  follow(filter: LogFilter, after: number, write: (line: LogLine) => boolean): LogFollower {
    const follower = new LogFollower(filter, write, this.#followerQueueMax, () =>
      this.#followers.delete(follower),
    );
    for (const line of this.read(filter, after, Number.POSITIVE_INFINITY)) follower.offer(line);
    this.#followers.add(follower);
    return follower;
  }

  /** Drops a destroyed machine's lines. */
  forget(machineId: string): void {
    this.#rings.delete(machineId);
    this.#apps.delete(machineId);
  }

  #appOf(machineId: string): string {
    let app = this.#apps.get(machineId);
    if (app === undefined) {
      app = this.options.appOf(machineId) ?? '';
      this.#apps.set(machineId, app);
    }
    return app;
  }
}

function matches(line: LogLine, filter: LogFilter): boolean {
  return (
    (filter.app === undefined || line.app === filter.app) &&
    (filter.machineId === undefined || line.machine_id === filter.machineId)
  );
}

/** One reader of the live lines, with its own bounded queue. */
export class LogFollower {
  readonly #queue: LogLine[] = [];
  #paused = false;
  #dropped = 0;

  constructor(
    readonly filter: LogFilter,
    private readonly write: (line: LogLine) => boolean,
    private readonly queueMax: number,
    readonly close: () => void,
  ) {}

  offer(line: LogLine): void {
    if (this.#paused && this.#queue.length >= this.queueMax) {
      this.#dropped++;
      logMetrics().dropped.add(1, { reason: 'slow_follower' });
      return;
    }
    // The first line taken after a gap says how many lines the gap held.
    const taken = this.#dropped > 0 ? { ...line, dropped_before: this.#dropped } : line;
    this.#dropped = 0;
    if (this.#paused) this.#queue.push(taken);
    else this.#send(taken);
  }

  /** The reader drained: sends what waited, until it pushes back again. */
  resume(): void {
    this.#paused = false;
    while (!this.#paused) {
      const line = this.#queue.shift();
      if (line === undefined) return;
      this.#send(line);
    }
  }

  #send(line: LogLine): void {
    if (!this.write(line)) this.#paused = true;
  }
}
