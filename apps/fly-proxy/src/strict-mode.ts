import { metrics } from '@opentelemetry/api';

export interface StrictLimits {
  /** Requests of one app in flight at once through this instance. */
  appRequestsMax: number;
  /** Response bytes one app may send per second through this instance (a 1 s burst). */
  appBytesPerSecond: number;
}

/** Apps tracked at once; idle ones are forgotten first past it. */
const appsMax = 10_000;

interface AppBudget {
  inFlight: number;
  /** Bytes the app may still send; negative after a large response (a debt, repaid by time). */
  tokens: number;
  refilledMs: number;
}

/**
 * Seed 004: a second proxy forced to run beside the active one on the same host must not double
 * the host's budget. Until Airtime (issue 13) exists, this is its hook: a forced second instance
 * caps every app at a low number of requests in flight and a low bandwidth (a token bucket
 * charged with each response's body bytes when it ends); past either cap it answers 503
 * PROXY_ERR_STRICT_LIMIT. Only the HTTP/1.1 relay enforces it (HTTP/2 and raw TCP: not yet).
 */
export class StrictMode {
  readonly #apps = new Map<string, AppBudget>();
  readonly #refused = new Map<string, number>();

  constructor(
    readonly limits: StrictLimits,
    readonly holder: string,
  ) {
    const meter = metrics.getMeter('fleet.fly-proxy');
    meter
      .createObservableCounter('proxy_strict_refusals', {
        description: 'requests a strict second instance refused, by reason (requests, bandwidth)',
      })
      .addCallback((result) => {
        for (const [reason, count] of this.#refused) result.observe(count, { reason });
      });
  }

  /** Why `app` may not start a request now (the message of the 503), or undefined: admitted. */
  admit(app: string): string | undefined {
    const budget = this.#budget(app);
    const nowMs = Date.now();
    const rate = this.limits.appBytesPerSecond;
    budget.tokens = Math.min(rate, budget.tokens + ((nowMs - budget.refilledMs) / 1000) * rate);
    budget.refilledMs = nowMs;
    let reason: 'requests' | 'bandwidth' | undefined;
    if (budget.inFlight >= this.limits.appRequestsMax) reason = 'requests';
    else if (budget.tokens <= 0) reason = 'bandwidth';
    if (reason === undefined) {
      budget.inFlight += 1;
      return undefined;
    }
    this.#refused.set(reason, (this.#refused.get(reason) ?? 0) + 1);
    return reason === 'requests'
      ? `strict second instance: app ${app} has ${this.limits.appRequestsMax} requests in flight here`
      : `strict second instance: app ${app} is over ${rate} bytes/s here`;
  }

  /** An admitted request of `app` ended, having sent `bytes` of response body. */
  done(app: string, bytes: number): void {
    const budget = this.#apps.get(app);
    if (budget === undefined) return;
    budget.inFlight -= 1;
    budget.tokens -= bytes;
  }

  stats() {
    return { ...this.limits, holder: this.holder, refused: Object.fromEntries(this.#refused) };
  }

  #budget(app: string): AppBudget {
    let budget = this.#apps.get(app);
    if (budget !== undefined) return budget;
    if (this.#apps.size >= appsMax) {
      for (const [name, each] of this.#apps) {
        if (each.inFlight === 0) this.#apps.delete(name);
        if (this.#apps.size < appsMax) break;
      }
    }
    budget = { inFlight: 0, tokens: this.limits.appBytesPerSecond, refilledMs: Date.now() };
    this.#apps.set(app, budget);
    return budget;
  }
}
