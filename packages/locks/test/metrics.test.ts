import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { present } from '@fleet/service/invariant';
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, it } from 'vitest';
import { bucketBoundsMs, type LockError, RwLock } from '../src/index.js';

interface Installed {
  scrape(): Promise<string>;
  stop(): Promise<void>;
}

/** The production setup (@fleet/service): an SDK provider with a Prometheus reader on /metrics. */
async function installSdk(): Promise<Installed> {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [exporter] });
  expect(metrics.setGlobalMeterProvider(provider)).toBe(true);
  const server: Server = createServer((request, response) =>
    exporter.getMetricsRequestHandler(request, response),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    scrape: async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text(),
    stop: async () => {
      metrics.disable();
      await provider.shutdown();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** The value of the sample `name` whose labels include `labels`, or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)\{(.*)\} (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const found = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map(([, key, value]) => [key, value]),
    );
    if (Object.entries(labels).every(([key, value]) => found[key] === value))
      return Number(match[3]);
  }
  return undefined;
}

let installed: Installed | undefined;
afterEach(async () => {
  await installed?.stop();
  installed = undefined;
});

const busyMs = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

// Waits and holds are counted by the lock and exported at collection: count, sum, max and
// cumulative buckets per lock, label and mode, with sub-millisecond resolution; they reach
// /metrics whether the SDK was installed before the lock was made or after it was used.
describe('lock metrics on /metrics', () => {
  it('exports waits and holds per label when the SDK came first', async () => {
    installed = await installSdk();
    const lock = new RwLock({ name: 'sdk-first' });
    for (let i = 0; i < 3; i++) await lock.read('route', () => i, { context: { app: 'web' } });
    await lock.write('apply', () => busyMs(3));
    const text = await installed.scrape();
    const route = { lock: 'sdk-first', label: 'route', mode: 'read' };
    const apply = { lock: 'sdk-first', label: 'apply', mode: 'write' };
    expect(sample(text, 'lock_hold_ms_count', route)).toBe(3);
    expect(sample(text, 'lock_wait_ms_count', route)).toBe(3);
    expect(sample(text, 'lock_wait_ms_bucket', { ...route, le: '0.001' })).toBe(3);
    expect(sample(text, 'lock_hold_ms_bucket', { ...route, le: '+Inf' })).toBe(3);
    // Sub-millisecond resolution: three tiny holds add up to a fraction of a millisecond (a
    // whole number would mean milliseconds were counted). No bound on how long they took: a
    // loaded machine may stretch any of them.
    const routeSum = present(sample(text, 'lock_hold_ms_sum', route), 'the route sum');
    expect(routeSum).toBeGreaterThan(0);
    expect(Number.isInteger(routeSum)).toBe(false);
    expect(sample(text, 'lock_hold_ms_bucket', { ...apply, le: '2.5' })).toBe(0);
    expect(sample(text, 'lock_hold_ms_bucket', { ...apply, le: '+Inf' })).toBe(1);
    expect(sample(text, 'lock_hold_ms_max', apply)).toBeGreaterThanOrEqual(3);
    // The max is the longest since the previous collection.
    expect(sample(await installed.scrape(), 'lock_hold_ms_max', apply)).toBe(0);
    // Every bucket bound is exported; buckets are cumulative (never fewer at a higher bound).
    const buckets = [...bucketBoundsMs.map(String), '+Inf'].map((le) =>
      sample(text, 'lock_hold_ms_bucket', { ...route, le }),
    );
    expect(buckets.every((count) => count !== undefined)).toBe(true);
    for (const [i, count] of buckets.entries())
      if (i > 0) expect(count).toBeGreaterThanOrEqual(present(buckets[i - 1], `bucket ${i - 1}`));
    expect(sample(text, 'lock_hold_ms_bucket', { ...route, le: '10000' })).toBe(3);
  });

  it('exports what a lock counted before the SDK was installed', async () => {
    const lock = new RwLock({ name: 'lock-first' });
    await lock.read('early', () => 1);
    installed = await installSdk();
    await lock.read('late', () => 1);
    const text = await installed.scrape();
    expect(sample(text, 'lock_hold_ms_count', { lock: 'lock-first', label: 'early' })).toBe(1);
    expect(sample(text, 'lock_hold_ms_count', { lock: 'lock-first', label: 'late' })).toBe(1);
  });

  it('shows a stuck writer while it holds, with the queue behind it', async () => {
    installed = await installSdk();
    const lock = new RwLock({ name: 'stuck' });
    const gate = deferred();
    const writer = lock.write('apply', () => gate.promise);
    const reader = lock.read('route', () => 1, { timeoutMs: 5_000 });
    await sleep(30);
    let text = await installed.scrape();
    expect(sample(text, 'lock_oldest_hold_ms', { lock: 'stuck' })).toBeGreaterThanOrEqual(25);
    expect(sample(text, 'lock_holds', { lock: 'stuck', mode: 'write' })).toBe(1);
    expect(sample(text, 'lock_queue_depth', { lock: 'stuck' })).toBe(1);
    expect(sample(text, 'lock_oldest_wait_ms', { lock: 'stuck' })).toBeGreaterThanOrEqual(25);
    expect(sample(text, 'lock_hold_ms_count', { lock: 'stuck', label: 'apply' })).toBe(0);
    gate.resolve();
    await Promise.all([writer, reader]);
    text = await installed.scrape();
    expect(sample(text, 'lock_oldest_hold_ms', { lock: 'stuck' })).toBe(0);
    expect(sample(text, 'lock_queue_depth', { lock: 'stuck' })).toBe(0);
    const route = { lock: 'stuck', label: 'route' };
    expect(sample(text, 'lock_wait_ms_bucket', { ...route, le: '10' })).toBe(0);
    expect(sample(text, 'lock_wait_ms_count', route)).toBe(1);
  });

  // A lock nobody touches after the SDK arrives: the poll registers with the new provider.
  it('finds a writer stuck since before the SDK was installed', async () => {
    const lock = new RwLock({ name: 'stuck-before' });
    const gate = deferred();
    const writer = lock.write('apply', () => gate.promise);
    installed = await installSdk();
    await sleep(1_100);
    const text = await installed.scrape();
    expect(sample(text, 'lock_oldest_hold_ms', { lock: 'stuck-before' })).toBeGreaterThan(1_000);
    gate.resolve();
    await writer;
  });

  it('counts rare events with SDK counters', async () => {
    installed = await installSdk();
    const lock = new RwLock({ name: 'rare' });
    const gate = deferred();
    const holder = lock.write('holder', () => gate.promise);
    await lock.write('late', () => 1, { timeoutMs: 1 }).catch(() => undefined);
    await lock.read('cancelled', () => 1, { signal: AbortSignal.abort() }).catch(() => 1);
    gate.resolve();
    await holder;
    await lock.read('outer', () => lock.write('inner', () => 1)).catch(() => undefined);
    const text = await installed.scrape();
    expect(sample(text, 'lock_timeouts_total', { lock: 'rare', label: 'late' })).toBe(1);
    expect(sample(text, 'lock_cancellations_total', { lock: 'rare', label: 'cancelled' })).toBe(1);
    expect(sample(text, 'lock_reentries_total', { lock: 'rare', label: 'inner' })).toBe(1);
  });

  it('documents every metric it exports', async () => {
    installed = await installSdk();
    const lock = new RwLock({
      name: 'documented',
      holdMsMax: 0,
      slowWaitMs: 0,
      maxWaiters: 3,
      logger: {
        warn: () => {
          throw new Error('a broken logger');
        },
      },
    });
    const gate = deferred();
    const holder = lock.write('holder', () => gate.promise);
    const outcomes = [
      lock.write('late', () => 1, { timeoutMs: 1 }),
      lock.read('queued', () => 1),
      lock.read('queued-too', () => 1),
      lock.read('refused', () => 1),
      lock.read('cancelled', () => 1, { signal: AbortSignal.abort() }),
    ].map((promise) => promise.catch((error: LockError) => error.code));
    await sleep(5);
    gate.resolve();
    expect(await Promise.all(outcomes)).toEqual([
      'LOCK_ERR_TIMEOUT',
      1,
      1,
      'LOCK_ERR_QUEUE_FULL',
      'LOCK_ERR_CANCELLED',
    ]);
    await holder;
    await lock.read('outer', () => lock.write('inner', () => 1)).catch(() => undefined);
    const names = new Set(
      [...(await installed.scrape()).matchAll(/^# TYPE (\w+) /gm)].map(([, name]) =>
        present(name, 'a TYPE line name'),
      ),
    );
    names.delete('target_info');
    expect(names.size).toBe(20);
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    for (const name of names) expect(readme, `${name} in README`).toContain(`\`${name}\``);
  });
});

// A metrics SDK that throws at every turn loses the lock its metrics, never its state.
describe('a meter provider that throws', () => {
  it('changes nothing in the lock', async () => {
    const broken = () => {
      throw new Error('broken SDK');
    };
    const instrument = { add: broken, record: broken, addCallback: broken };
    metrics.setGlobalMeterProvider({
      getMeter: () =>
        ({
          createCounter: () => instrument,
          createObservableGauge: () => instrument,
          addBatchObservableCallback: broken,
        }) as never,
    });
    try {
      const lock = new RwLock({ name: 'broken-sdk' });
      const gate = deferred();
      const holder = lock.write('holder', () => gate.promise);
      const late = lock.write('late', () => 1, { timeoutMs: 5 });
      const reader = lock.read('reader', () => 'read');
      await expect(late).rejects.toMatchObject({ code: 'LOCK_ERR_TIMEOUT' });
      gate.resolve();
      await holder;
      expect(await reader).toBe('read');
      await expect(lock.read('outer', () => lock.write('inner', () => 1))).rejects.toMatchObject({
        code: 'LOCK_ERR_REENTRANT',
      });
      expect(lock.snapshot()).toMatchObject({ holders: [], queued: [] });
    } finally {
      metrics.disable();
    }
  });
});
