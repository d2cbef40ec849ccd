import type { Logger } from '@fleet/service';
import { AppMeter, type LimitReason } from './app-meter.js';
import { type BudgetState, fairShares, nextBudget, unlimited } from './host-budget.js';
import type { HostLoad } from './host-load.js';
import { HostSampler } from './host-sampler.js';
import type { AirtimeLimits, AppLimit } from './limits.js';
import { AppFlows, type FlowSides } from './throttle.js';
import { ThrottledTotals } from './throttled-totals.js';

/** Apps tracked at once; idle ones (nothing in flight) are forgotten first past it. */
const appsMax = 10_000;
/** Apps listed by `proxyctl airtime`, heaviest first. */
const appsShownMax = 100;

export type RefusalReason = 'requests' | 'bandwidth';

/** Why a new request or connection of an app is not admitted: a 503 with this code. */
export interface Refusal {
  code: 'PROXY_ERR_AIRTIME_LIMIT' | 'PROXY_ERR_STRICT_LIMIT';
  reason: RefusalReason;
  message: string;
}

/**
 * Airtime (seed 004): per-app token buckets of bytes, both directions, charged as bytes move,
 * under a host-wide budget that follows the whole host's load (/proc/stat CPU with softirq,
 * /proc/net/dev bytes), not only this proxy's. While the host has headroom each app is limited
 * by its own bucket alone; over the configured CPU or network the budget shrinks and is shared
 * max-min fairly among the apps using it: the heaviest are throttled first, light apps untouched.
 * Throttling pauses reads (throttle.ts); only a new request of an app over its hard cap (its
 * requests in flight, or a debt past its burst) is refused.
 */
export class Airtime {
  readonly #apps = new Map<string, AppMeter>();
  readonly #sampler: HostSampler;
  readonly #refused = new Map<RefusalReason, number>();
  readonly #totals = new ThrottledTotals();
  /** What each meter had reported into #totals (meters are forgotten, totals are not). */
  readonly #reported = new WeakMap<AppMeter, { ms: number; bytes: number }>();
  #budget: BudgetState = unlimited;
  #load: HostLoad | undefined;
  #sampledAtMs = 0;
  #sampleError: string | undefined;
  #sampleErrors = 0;
  #lastTickMs = Date.now();

  constructor(
    readonly limits: AirtimeLimits,
    private readonly logger: Logger,
  ) {
    this.#sampler = new HostSampler(limits.procRoot, limits.sampleIntervalMs, (load) =>
      this.#tick(load),
    );
  }

  get strict(): boolean {
    return this.limits.strict !== undefined;
  }

  get budget(): Readonly<BudgetState> {
    return this.#budget;
  }

  get load(): HostLoad | undefined {
    return this.#load;
  }

  get sampleErrors(): number {
    return this.#sampleErrors;
  }

  get refused(): ReadonlyMap<RefusalReason, number> {
    return this.#refused;
  }

  meters(): IterableIterator<AppMeter> {
    return this.#apps.values();
  }

  /** Throttled time and bytes per app series (bounded), brought up to date. */
  throttledTotals(): ThrottledTotals {
    const nowMs = Date.now();
    for (const meter of this.#apps.values()) this.#report(meter, nowMs);
    return this.#totals;
  }

  /**
   * Admits one request or connection of `app`, or answers why not. Admitted, it holds one slot
   * of the app's requests in flight until the flows are closed.
   */
  admit(app: string, sides: FlowSides): AppFlows | Refusal {
    const meter = this.#meter(app);
    const requestsMax = Math.min(
      this.limits.appRequestsMax,
      this.limits.strict?.requestsMax ?? Number.POSITIVE_INFINITY,
    );
    meter.bucket.refill(Date.now());
    let reason: RefusalReason | undefined;
    if (meter.inFlight >= requestsMax) reason = 'requests';
    else if (meter.bucket.tokens < -meter.bucket.burstBytes) reason = 'bandwidth';
    if (reason === undefined) {
      meter.inFlight += 1;
      meter.flows += 1;
      return new AppFlows(meter, sides, (closed) => {
        closed.inFlight -= 1;
        closed.flows -= 1;
      });
    }
    this.#refused.set(reason, (this.#refused.get(reason) ?? 0) + 1);
    const where = this.strict ? 'strict second instance' : 'airtime';
    return {
      code: this.strict ? 'PROXY_ERR_STRICT_LIMIT' : 'PROXY_ERR_AIRTIME_LIMIT',
      reason,
      message:
        reason === 'requests'
          ? `${where}: app ${app} has ${requestsMax} requests in flight here`
          : `${where}: app ${app} is over ${Math.round(meter.bucket.rateBytesPerSecond)} bytes/s here, past its burst`,
    };
  }

  close(): void {
    this.#sampler.close();
  }

  /** The strict second instance's caps and refusals (the `strict` of `status`), or null. */
  strictStats() {
    const strict = this.limits.strict;
    if (strict === undefined) return null;
    return {
      appRequestsMax: Math.min(strict.requestsMax, this.limits.appRequestsMax),
      appBytesPerSecond: strict.bytesPerSecond,
      holder: strict.holder,
      refused: Object.fromEntries(this.#refused),
    };
  }

  /** What `proxyctl airtime` shows: the host, the budget, each app (heaviest first, bounded). */
  snapshot() {
    const nowMs = Date.now();
    const apps = [...this.#apps.values()]
      .sort(
        (one, other) =>
          Number(other.throttled) - Number(one.throttled) ||
          other.bytesPerSecond - one.bytesPerSecond,
      )
      .slice(0, appsShownMax);
    return {
      strict: this.strictStats(),
      host: {
        procRoot: this.limits.procRoot,
        sampledAt: this.#sampledAtMs === 0 ? null : new Date(this.#sampledAtMs).toISOString(),
        cpuBusyRatio: this.#load?.cpuBusyRatio ?? null,
        softirqRatio: this.#load?.softirqRatio ?? null,
        networkBytesPerSecond: this.#load?.networkBytesPerSecond ?? null,
        sampleError: this.#sampleError ?? null,
      },
      limits: {
        cpuBusyRatioMax: this.limits.host.cpuBusyRatioMax,
        networkBytesPerSecondMax: this.limits.host.networkBytesPerSecondMax,
        appFloorBytesPerSecond: this.limits.host.appFloorBytesPerSecond,
        appBytesPerSecond: this.limits.app.bytesPerSecond,
        appBurstBytes: this.limits.app.burstBytes,
        appRequestsMax: this.limits.appRequestsMax,
        overrides: this.limits.overrides.size,
      },
      budget: {
        bytesPerSecond: this.#budget.bytesPerSecond,
        pressure: this.#budget.pressure,
      },
      appsTracked: this.#apps.size,
      apps: apps.map((meter) => ({
        app: meter.app,
        rateBytesPerSecond: Math.round(meter.bucket.rateBytesPerSecond),
        burstBytes: Math.round(meter.bucket.burstBytes),
        tokens: Math.round(meter.bucket.tokens),
        bytesPerSecond: Math.round(meter.bytesPerSecond),
        bytesIn: meter.bytesIn,
        bytesOut: meter.bytesOut,
        inFlight: meter.inFlight,
        throttled: meter.throttled,
        reason: meter.throttled ? (meter.limitedBy ?? null) : null,
        throttledMs: meter.throttledMsAt(nowMs),
        throttledBytes: meter.throttledBytes,
      })),
      refused: Object.fromEntries(this.#refused),
    };
  }

  #meter(app: string): AppMeter {
    let meter = this.#apps.get(app);
    if (meter !== undefined) return meter;
    const nowMs = Date.now();
    if (this.#apps.size >= appsMax) this.#forgetIdle(nowMs);
    const limit = this.#appLimit(app);
    meter = new AppMeter(app, limit.bytesPerSecond, limit.burstBytes, nowMs);
    this.#shape(meter, nowMs);
    this.#apps.set(app, meter);
    return meter;
  }

  #forgetIdle(nowMs: number): void {
    const idle = [...this.#apps.values()]
      .filter((meter) => meter.flows === 0)
      .sort((one, other) => one.lastUsedMs - other.lastUsedMs);
    for (const meter of idle.slice(0, Math.max(1, Math.ceil(appsMax / 10)))) {
      this.#report(meter, nowMs);
      this.#apps.delete(meter.app);
    }
  }

  #appLimit(app: string): AppLimit {
    return this.limits.overrides.get(app) ?? this.limits.app;
  }

  /** Sets a meter's bucket to the tightest of its own limit, the strict cap and its host share. */
  #shape(meter: AppMeter, nowMs: number): void {
    const own = this.#appLimit(meter.app);
    let rate = own.bytesPerSecond;
    let limitedBy: LimitReason | undefined;
    const strict = this.limits.strict;
    if (strict !== undefined && strict.bytesPerSecond < rate) {
      rate = strict.bytesPerSecond;
      limitedBy = 'strict';
    }
    if (meter.hostShare !== undefined && meter.hostShare < rate) {
      rate = meter.hostShare;
      limitedBy = this.#budget.pressure[0] ?? 'host_network';
    }
    // A limit below the app's own saves at most one second of it.
    const burst = limitedBy === undefined ? own.burstBytes : Math.min(own.burstBytes, rate);
    meter.limitedBy = limitedBy ?? 'app_limit';
    meter.bucket.reshape(rate, burst, nowMs);
  }

  /** One host sample: each app's rate over it, the next budget, the heaviest apps' shares. */
  #tick(load: HostLoad | Error): void {
    const nowMs = Date.now();
    const elapsedMs = nowMs - this.#lastTickMs;
    this.#lastTickMs = nowMs;
    let proxyBytesPerSecond = 0;
    const demands = new Map<string, number>();
    for (const meter of this.#apps.values()) {
      meter.endSample(elapsedMs);
      proxyBytesPerSecond += meter.bytesPerSecond;
      if (meter.bytesPerSecond > 0 || meter.throttledLastSample)
        demands.set(
          meter.app,
          meter.throttledLastSample ? Number.POSITIVE_INFINITY : meter.bytesPerSecond,
        );
    }
    if (load instanceof Error) {
      this.#sampleErrors += 1;
      if (this.#sampleError === undefined)
        this.logger.warn(
          { err: load, procRoot: this.limits.procRoot },
          'airtime cannot sample the host load',
        );
      this.#sampleError = load.message;
      return; // the budget stays as it was: no new knowledge of the host
    }
    this.#sampleError = undefined;
    this.#load = load;
    this.#sampledAtMs = nowMs;
    const before = this.#budget;
    this.#budget = nextBudget(before, load, proxyBytesPerSecond, this.limits.host);
    this.#logChange(before, load);
    const budget = this.#budget.bytesPerSecond;
    const shares =
      budget === null
        ? new Map<string, number>()
        : fairShares(demands, budget, this.limits.host.appFloorBytesPerSecond);
    for (const meter of this.#apps.values()) {
      meter.hostShare = shares.get(meter.app);
      this.#shape(meter, nowMs);
    }
  }

  #logChange(before: BudgetState, load: HostLoad): void {
    const now = this.#budget;
    if (before.bytesPerSecond === null && now.bytesPerSecond !== null)
      this.logger.warn(
        {
          event: 'airtime_budget_shrunk',
          pressure: now.pressure,
          budgetBytesPerSecond: Math.round(now.bytesPerSecond),
          ...load,
        },
        'host over its headroom: airtime shrinks the proxy budget',
      );
    else if (before.bytesPerSecond !== null && now.bytesPerSecond === null)
      this.logger.info(
        { event: 'airtime_budget_lifted', ...load },
        'host has headroom again: airtime budget lifted',
      );
  }

  #report(meter: AppMeter, nowMs: number): void {
    const reported = this.#reported.get(meter) ?? { ms: 0, bytes: 0 };
    const ms = meter.throttledMsAt(nowMs);
    this.#totals.add(meter.app, ms - reported.ms, meter.throttledBytes - reported.bytes);
    this.#reported.set(meter, { ms, bytes: meter.throttledBytes });
  }
}
