import { type LocalHistogram, localHistogram } from '@fleet/service';
import { type Attributes, type Counter, metrics } from '@opentelemetry/api';
import type { Supervisor } from './watchdog/supervisor.js';

/**
 * Every instrument of fly-proxy, in one place. Requests are counted in a local map and upstream
 * times in a local histogram, both exported when metrics are collected: an instrument's `add` or
 * `record` hashes its attributes on every call, which was a visible share of each request's
 * cost. Label values are bounded by the caller (known apps only).
 */
export class ProxyMetrics {
  /** Requests by app, then status (nested: no key string to build and hash per request). */
  readonly #requests = new Map<string, Map<number, { attributes: Attributes; count: number }>>();
  readonly #upstreamMs: LocalHistogram;
  readonly #unhandled: Counter;

  constructor() {
    const meter = metrics.getMeter('fleet.fly-proxy');
    meter
      .createObservableCounter('proxy_requests', { description: 'requests by app and status' })
      .addCallback((result) => {
        for (const statuses of this.#requests.values())
          for (const { attributes, count } of statuses.values()) result.observe(count, attributes);
      });
    this.#upstreamMs = localHistogram('proxy_upstream_ms', {
      scope: 'fleet.fly-proxy',
      description: 'time from forwarding to the machine answering headers',
      unit: 'ms',
      label: 'app',
    });
    this.#unhandled = meter.createCounter('proxy_unhandled_rejections', {
      description: 'promise rejections nothing handled (a bug): logged and counted, not a crash',
    });
  }

  /** A rejection nothing handled reached the process. */
  unhandledRejection(): void {
    this.#unhandled.add(1);
  }

  /** One request answered, by the machine or by the proxy itself. */
  request(app: string, status: number): void {
    let statuses = this.#requests.get(app);
    if (statuses === undefined) {
      statuses = new Map();
      this.#requests.set(app, statuses);
    }
    const counted = statuses.get(status);
    if (counted !== undefined) counted.count += 1;
    else statuses.set(status, { attributes: { app, status }, count: 1 });
  }

  /** Time from forwarding a request to its machine's response head. */
  upstream(app: string, milliseconds: number): void {
    this.#upstreamMs.record(app, milliseconds);
  }
}

/**
 * The watchdog's instruments (the fly-proxy-watchdog process), read from its supervisor at
 * collection time.
 */
export function registerWatchdogMetrics(supervisor: Pick<Supervisor, 'status'>): void {
  const meter = metrics.getMeter('fleet.fly-proxy-watchdog');
  meter
    .createObservableCounter('watchdog_restarts', {
      description: 'proxies restarted by the watchdog, by reason (unanswered, exited)',
    })
    .addCallback((result) => {
      for (const [reason, count] of Object.entries(supervisor.status().restartsByReason)) {
        result.observe(count, { reason });
      }
    });
  meter
    .createObservableCounter('watchdog_handoffs', {
      description: 'restarts without dropping (SIGHUP, proxyctl restart) completed',
    })
    .addCallback((result) => result.observe(supervisor.status().handoffs));
  meter
    .createObservableGauge('watchdog_proxies_draining', {
      description: 'earlier proxy generations still draining their connections',
    })
    .addCallback((result) => result.observe(supervisor.status().drainingPids.length));
  meter
    .createObservableGauge('watchdog_proxy_answering', {
      description: '1 while the proxy answers its control channel, else 0',
    })
    .addCallback((result) => result.observe(supervisor.status().state === 'running' ? 1 : 0));
}
