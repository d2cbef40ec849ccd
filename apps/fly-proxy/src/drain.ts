import type { Logger } from '@fleet/service';

/** One thing that accepts client connections (a listener, the public TCP ports). */
export interface Drainable {
  /** Stops accepting: closes the listening handle only; open connections stay. */
  stopAccepting(): void;
  /** Client connections still open. */
  connections(): number;
}

export interface DrainOptions {
  /** Idle keep-alive connections are closed this long after the drain starts. */
  graceMs: number;
  /** Past this, whatever is still open (tunnels, long requests) is cut and the proxy exits. */
  deadlineMs: number;
}

export type InstanceState = 'serving' | 'draining';

export interface DrainStatus {
  state: InstanceState;
  /** Why the drain started (`proxyctl`, `watchdog`); null while serving. */
  reason: string | null;
  startedAt: string | null;
  graceMs: number;
  deadlineMs: number;
  connections: number;
}

/** How often a draining proxy looks whether its last connection closed. */
const pollMs = 50;

/**
 * Zero-drop restarts (issue 13): the proxy stops accepting (its successor accepts on the same
 * sockets, or the operator took it out of rotation), and lets the connections it owns finish.
 * HTTP/1.1 responses say `Connection: close` and the connection closes after them; HTTP/2
 * sessions get GOAWAY; idle keep-alive connections are closed after `graceMs` (a request may be
 * on the wire when the drain starts); tunnels (WebSocket, raw TCP) run until `deadlineMs`. When
 * the last connection is gone, or at the deadline, `finished` is called once. Never
 * `http.Server.close()`: on Node 19+ it resets connections accepted but not yet read.
 */
export class Drain {
  readonly #parts: Drainable[];
  readonly #options: DrainOptions;
  readonly #logger: Logger;
  readonly #closeIdle: () => void;
  #reason: string | null = null;
  #startedMs = 0;
  #timers: NodeJS.Timeout[] = [];
  #finished = false;

  /** Called once, when the last connection closed ('drained') or at the deadline. */
  finished: (outcome: 'drained' | 'deadline') => void = () => undefined;
  /** Called when the drain starts (before listeners stop accepting). */
  started: () => void = () => undefined;

  constructor(parts: Drainable[], closeIdle: () => void, options: DrainOptions, logger: Logger) {
    this.#parts = parts;
    this.#closeIdle = closeIdle;
    this.#options = options;
    this.#logger = logger;
  }

  get draining(): boolean {
    return this.#reason !== null;
  }

  /** Starts draining (a second call changes nothing) and answers the status. */
  start(reason: string): DrainStatus {
    if (this.#reason !== null) return this.status();
    this.#reason = reason;
    this.#startedMs = Date.now();
    this.started();
    for (const part of this.#parts) part.stopAccepting();
    this.#logger.warn(
      { event: 'drain_started', reason, ...this.#options, connections: this.#connections() },
      'draining: not accepting, finishing open connections',
    );
    this.#timers.push(
      setTimeout(() => this.#closeIdle(), this.#options.graceMs),
      setTimeout(() => this.#finish('deadline'), this.#options.deadlineMs),
      setInterval(() => {
        if (this.#connections() === 0) this.#finish('drained');
      }, pollMs),
    );
    return this.status();
  }

  status(): DrainStatus {
    return {
      state: this.draining ? 'draining' : 'serving',
      reason: this.#reason,
      startedAt: this.#startedMs === 0 ? null : new Date(this.#startedMs).toISOString(),
      graceMs: this.#options.graceMs,
      deadlineMs: this.#options.deadlineMs,
      connections: this.#connections(),
    };
  }

  /** Stops the timers (the proxy is shutting down anyway). */
  close(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers = [];
  }

  #connections(): number {
    return this.#parts.reduce((sum, part) => sum + part.connections(), 0);
  }

  #finish(outcome: 'drained' | 'deadline'): void {
    if (this.#finished) return;
    this.#finished = true;
    this.close();
    const left = this.#connections();
    const elapsedMs = Date.now() - this.#startedMs;
    if (outcome === 'deadline')
      this.#logger.warn({ event: 'drain_deadline', left, elapsedMs }, 'drain deadline: cutting');
    else this.#logger.info({ event: 'drain_finished', elapsedMs }, 'drained');
    this.finished(outcome);
  }
}
