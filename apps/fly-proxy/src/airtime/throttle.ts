import type { AppMeter } from './app-meter.js';

/** A paused flow re-checks its app's tokens at least this often (its rate may have changed). */
const recheckMsMax = 1_000;

/**
 * One direction of one flow (a request body, a response body, a tunnel's side): charged with
 * the bytes it moves as they move, and paused — its reads stop, backpressure does the rest —
 * while its app's bucket is in debt. Nothing is dropped or buffered beyond the chunk in hand.
 * Something else may resume the source meanwhile (the other side draining): the next chunk is
 * charged and pauses it again, so the rate holds whoever resumes.
 */
export class Throttle {
  #paused = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    private readonly meter: AppMeter,
    private readonly direction: 'in' | 'out',
    /** The flow's owner (an exchange, a TCP connection): its methods are called on it. */
    private readonly sides: FlowSides,
  ) {}

  get paused(): boolean {
    return this.#paused;
  }

  moved(bytes: number): void {
    if (this.#closed || bytes === 0) return;
    const nowMs = Date.now();
    const waitMs = this.meter.charge(bytes, this.direction, nowMs);
    if (waitMs === 0) return;
    if (this.direction === 'in') this.sides.pauseClient();
    else this.sides.pauseMachine();
    if (this.#paused) return; // its timer runs already
    this.#paused = true;
    this.meter.flowPaused(nowMs);
    this.#arm(waitMs);
  }

  /** Stops charging; a pause in progress is ended without resuming (the owner decides). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    if (this.#paused) {
      this.#paused = false;
      this.meter.flowResumed(Date.now());
    }
  }

  #arm(waitMs: number): void {
    this.#timer = setTimeout(() => this.#wake(), Math.min(waitMs, recheckMsMax));
  }

  #wake(): void {
    if (this.#closed) return;
    const nowMs = Date.now();
    this.meter.bucket.refill(nowMs);
    const waitMs = this.meter.bucket.waitMs();
    if (waitMs > 0) {
      this.#arm(waitMs);
      return;
    }
    this.#paused = false;
    this.meter.flowResumed(nowMs);
    if (this.direction === 'in') this.sides.resumeClient();
    else this.sides.resumeMachine();
  }
}

/** Pause and resume of the two sides of a flow: clients' reads (in) and machines' (out). */
export interface FlowSides {
  pauseClient(): void;
  resumeClient(): void;
  pauseMachine(): void;
  resumeMachine(): void;
}

/**
 * The Airtime of one admitted exchange or TCP connection of an app: both directions charged to
 * the app's bucket, and one slot of its requests in flight until `close`.
 */
export class AppFlows {
  readonly #in: Throttle;
  readonly #out: Throttle;
  #open = true;

  constructor(
    readonly meter: AppMeter,
    sides: FlowSides,
    private readonly closed: (meter: AppMeter) => void,
  ) {
    this.#in = new Throttle(meter, 'in', sides);
    this.#out = new Throttle(meter, 'out', sides);
  }

  /** Bytes from the client went to the machine. */
  in(bytes: number): void {
    this.#in.moved(bytes);
  }

  /** Bytes from the machine went to the client. */
  out(bytes: number): void {
    this.#out.moved(bytes);
  }

  /** Whether a side waits for tokens now (its silence is Airtime's, not the peer's). */
  get paused(): boolean {
    return this.#in.paused || this.#out.paused;
  }

  /** The client's reads are paused for tokens: whoever else would resume them must not. */
  get holdsClient(): boolean {
    return this.#in.paused;
  }

  /** The machine's reads are paused for tokens: whoever else would resume them must not. */
  get holdsMachine(): boolean {
    return this.#out.paused;
  }

  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#in.close();
    this.#out.close();
    this.closed(this.meter);
  }
}
