import { TokenBucket } from './token-bucket.js';

/** Why an app's rate is what it is: the constraint that binds it. */
export type LimitReason = 'host_cpu' | 'host_network' | 'app_limit' | 'strict';

/** One app's Airtime state on this proxy: its bucket and what it moved. */
export class AppMeter {
  readonly bucket: TokenBucket;
  /** Requests and raw TCP connections of the app in flight. */
  inFlight = 0;
  /** Open flows (exchanges, tunnels) charging this meter: a meter in use is never forgotten. */
  flows = 0;
  /** Bytes from clients to machines, and from machines to clients, since the app was first seen. */
  bytesIn = 0;
  bytesOut = 0;
  /** Bytes moved since the last sample, and the rate they made over the sample. */
  sampleBytes = 0;
  bytesPerSecond = 0;
  /** Flows paused now, since when at least one has been, and the totals of that. */
  pausedFlows = 0;
  pausedSinceMs = 0;
  throttledMs = 0;
  throttledBytes = 0;
  /** Some flow was paused during the current sample (its demand is above its rate). */
  throttledInSample = false;
  throttledLastSample = false;
  /** The app's share of a shrunk host budget, when it is among the heaviest. */
  hostShare: number | undefined;
  limitedBy: LimitReason | undefined;
  lastUsedMs: number;

  constructor(
    readonly app: string,
    rateBytesPerSecond: number,
    burstBytes: number,
    nowMs: number,
  ) {
    this.bucket = new TokenBucket(rateBytesPerSecond, burstBytes, nowMs);
    this.lastUsedMs = nowMs;
  }

  get throttled(): boolean {
    return this.pausedFlows > 0 || this.throttledLastSample;
  }

  /** Counts `bytes` moved in one direction; answers how long the flow must wait (0: none). */
  charge(bytes: number, direction: 'in' | 'out', nowMs: number): number {
    if (direction === 'in') this.bytesIn += bytes;
    else this.bytesOut += bytes;
    this.sampleBytes += bytes;
    this.lastUsedMs = nowMs;
    const waitMs = this.bucket.take(bytes, nowMs);
    if (waitMs > 0) {
      this.throttledBytes += bytes;
      this.throttledInSample = true;
    }
    return waitMs;
  }

  flowPaused(nowMs: number): void {
    if (this.pausedFlows === 0) this.pausedSinceMs = nowMs;
    this.pausedFlows += 1;
    this.throttledInSample = true;
  }

  flowResumed(nowMs: number): void {
    this.pausedFlows -= 1;
    if (this.pausedFlows === 0) this.throttledMs += nowMs - this.pausedSinceMs;
  }

  /** Throttled time including a pause still running. */
  throttledMsAt(nowMs: number): number {
    return this.throttledMs + (this.pausedFlows > 0 ? nowMs - this.pausedSinceMs : 0);
  }

  /** Closes a sample `elapsedMs` long: its rate, whether it was throttled. */
  endSample(elapsedMs: number): void {
    this.bytesPerSecond = elapsedMs > 0 ? (this.sampleBytes * 1000) / elapsedMs : 0;
    this.sampleBytes = 0;
    this.throttledLastSample = this.throttledInSample || this.pausedFlows > 0;
    this.throttledInSample = false;
  }
}
