import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  airtimeOf,
  measure,
  type Reader,
  readHttp1,
  runProxyctl,
  startStreamingMachine,
  until,
} from './airtime-fixture.js';
import { type ProcCounters, writeProc } from './proc-fixture.js';
import { type Edge, startEdge } from './relay-fixture.js';

const heavyRate = 131_072; // heavy's override: 128 KiB/s, a burst of one second
const floorRate = 65_536;

/** Downloads `/bytes/<size>` of `host` `times` times; answers bytes per second by the test's clock. */
async function download(url: string, host: string, size: number, times: number): Promise<number> {
  const startMs = Date.now();
  let bytes = 0;
  for (let each = 0; each < times; each += 1) {
    const answer = await request(`${url}/bytes/${size}`, { headers: { host } });
    expect(answer.statusCode).toBe(200);
    bytes += (await answer.body.arrayBuffer()).byteLength;
  }
  expect(bytes).toBe(size * times);
  return (bytes * 1000) / Math.max(1, Date.now() - startMs);
}

// Airtime (seed 004) in a real proxy process over real sockets: an app over its own rate is
// slowed to about that rate (bytes over a window measured by the test's clock, wide margins)
// while another app's downloads keep flowing at full speed; and host pressure, simulated by
// fixture /proc files this test rewrites (--airtime-proc-root), shrinks the budget so the
// heaviest app is throttled, light apps untouched, and `proxyctl airtime` says why.
describe('airtime', () => {
  let edge: Edge;
  let machine: Awaited<ReturnType<typeof startStreamingMachine>>;
  let procRoot: string;
  let busy = false;
  let writer: NodeJS.Timeout | undefined;
  const readers: Reader[] = [];
  const counters: ProcCounters = {
    busyJiffies: 1_000,
    softirqJiffies: 100,
    idleJiffies: 9_000,
    receivedBytes: 0,
    transmittedBytes: 0,
  };
  const socket = () => join(edge.dir, 'proxy', 'control.sock');

  beforeAll(async () => {
    procRoot = mkdtempSync(join(tmpdir(), 'fleet-airtime-proc-'));
    // The host's counters move on every 50 ms: 10 % busy while calm, all busy (half of it
    // softirq, as in seed 004) while `busy`.
    const advance = () => {
      counters.busyJiffies += busy ? 10 : 1;
      counters.softirqJiffies += busy ? 5 : 0;
      counters.idleJiffies += busy ? 0 : 9;
      counters.receivedBytes += 1_000;
      writeProc(procRoot, counters);
    };
    advance();
    writer = setInterval(advance, 50);
    machine = await startStreamingMachine();
    edge = await startEdge(
      ['heavy', 'light', 'bulk'].map((app) => ({
        id: `${app}-1`,
        app,
        addr: machine.addr,
        region: 'ams',
      })),
      {
        region: 'ams',
        args: [
          ...['--airtime-proc-root', procRoot, '--airtime-sample-interval-ms', '200'],
          ...['--airtime-host-cpu-max', '0.8'],
          ...['--airtime-app-floor-bytes-per-second', String(floorRate)],
          ...['--airtime-app-overrides', `heavy=${heavyRate}`],
          ...['--airtime-app-requests-max', '2'],
        ],
      },
    );
    for (const app of ['heavy', 'light', 'bulk']) await edge.routable(`${app}.fleet.test`);
  });

  afterAll(async () => {
    for (const reader of readers) reader.close();
    clearInterval(writer);
    await edge?.stop();
    machine?.server.closeAllConnections();
    await new Promise((resolve) => machine?.server.close(resolve));
    if (procRoot) rmSync(procRoot, { recursive: true, force: true });
  });

  it('slows an app over its rate to about that rate while another app keeps flowing', async () => {
    const url = edge.urls.proxy;
    const heavy = readHttp1(url, 'heavy.fleet.test');
    readers.push(heavy);
    const light = download(url, 'light.fleet.test', 1_048_576, 8);
    const window = await measure(heavy, 1_000, 3_000);
    // At most its rate (with half again for timer slack) plus its burst and what sockets hold.
    expect(window.bytes).toBeLessThan(heavyRate * 1.5 * window.seconds + heavyRate + 1_048_576);
    expect(window.bytes).toBeGreaterThan((heavyRate / 8) * window.seconds); // slowed, not stopped
    // light went on meanwhile, far faster than heavy may go.
    expect(await light).toBeGreaterThan(heavyRate * 4);
    const airtime = await until('heavy throttled in proxyctl airtime', async () => {
      const answer = await airtimeOf(socket());
      const app = answer.apps.find((each) => each.app === 'heavy');
      return app?.throttled ? answer : undefined;
    });
    expect(airtime.apps.find((each) => each.app === 'heavy')).toMatchObject({
      rateBytesPerSecond: heavyRate,
      throttled: true,
      reason: 'app_limit',
    });
    expect(airtime.apps.find((each) => each.app === 'light')).toMatchObject({ throttled: false });
    expect(airtime.budget).toEqual({ bytesPerSecond: null, pressure: [] });
    heavy.close();
  });

  it('slows uploads too: the proxy reads a body no faster than the app rate allows', async () => {
    // Bytes the proxy read cannot pass its burst, the rate over the time, and the chunk that
    // made the debt: a lower bound on the upload's time that a slow machine only lengthens.
    const size = 512 * 1_024;
    const startMs = Date.now();
    const answer = await request(`${edge.proxy.urls.proxy}/upload`, {
      method: 'POST',
      headers: { host: 'heavy.fleet.test' },
      body: Buffer.alloc(size, 'u'),
    });
    expect(answer.statusCode).toBe(200);
    expect(await answer.body.text()).toBe(String(size));
    const seconds = (Date.now() - startMs) / 1000;
    expect(seconds).toBeGreaterThan((0.8 * (size - heavyRate - 65_536)) / heavyRate);
  });

  it('refuses a new request of an app at its requests in flight with 503, not other apps', async () => {
    const url = edge.urls.proxy;
    const held = [readHttp1(url, 'heavy.fleet.test'), readHttp1(url, 'heavy.fleet.test')];
    readers.push(...held);
    await until('both streams of heavy flowing', async () =>
      held.every((reader) => reader.bytes() > 0) ? true : undefined,
    );
    const refused = await request(`${url}/bytes/10`, { headers: { host: 'heavy.fleet.test' } });
    expect(refused.statusCode).toBe(503);
    expect(await refused.body.json()).toMatchObject({ code: 'PROXY_ERR_AIRTIME_LIMIT' });
    expect(await download(url, 'light.fleet.test', 10, 1)).toBeGreaterThan(0);
    for (const reader of held) reader.close();
    await until('heavy admitted again', async () => {
      const answer = await request(`${url}/bytes/10`, { headers: { host: 'heavy.fleet.test' } });
      await answer.body.dump();
      return answer.statusCode === 200 ? true : undefined;
    });
    const metrics = await (await request(`${edge.proxy.urls.admin}/metrics`)).body.text();
    // At least the one above (the wait for heavy's slots to free may add more).
    expect(metrics).toMatch(/proxy_airtime_refusals_total\{reason="requests"[^}]*\} [1-9]/);
  });

  it('shrinks the budget under host pressure, throttling the heaviest app, and says why', async () => {
    const url = edge.urls.proxy;
    const bulk = readHttp1(url, 'bulk.fleet.test');
    readers.push(bulk);
    await measure(bulk, 0, 500); // flowing, unthrottled: the host has headroom
    busy = true;
    const squeezed = await until('bulk throttled for host_cpu', async () => {
      const answer = await airtimeOf(socket());
      const app = answer.apps.find((each) => each.app === 'bulk');
      return app?.throttled && app.reason === 'host_cpu' ? answer : undefined;
    });
    expect(squeezed.budget.pressure).toEqual(['host_cpu']);
    expect(squeezed.budget.bytesPerSecond).toBeGreaterThanOrEqual(floorRate);
    expect(squeezed.host.cpuBusyRatio).toBeGreaterThan(0.8);
    // A light app's small requests still pass, and it is not throttled.
    expect(await download(url, 'light.fleet.test', 1_024, 5)).toBeGreaterThan(0);
    const light = (await airtimeOf(socket())).apps.find((each) => each.app === 'light');
    expect(light?.throttled).toBe(false);
    // Once the budget is at its floor, bulk moves about that much.
    await until('the budget at its floor', async () => {
      const answer = await airtimeOf(socket());
      return answer.budget.bytesPerSecond === floorRate ? true : undefined;
    });
    const window = await measure(bulk, 500, 3_000);
    expect(window.bytes).toBeLessThan(floorRate * 1.5 * window.seconds + floorRate + 1_048_576);
    const human = await runProxyctl(['--socket', socket(), 'airtime']);
    expect(human).toMatch(/budget: \d+ B\/s \(host_cpu\)/);
    expect(human).toMatch(/bulk .*yes: host_cpu/);

    busy = false;
    await until('the budget lifted', async () => {
      const answer = await airtimeOf(socket());
      return answer.budget.bytesPerSecond === null ? true : undefined;
    });
    const metrics = await (await request(`${edge.proxy.urls.admin}/metrics`)).body.text();
    expect(metrics).toMatch(/proxy_airtime_throttled_ms_total\{app="bulk"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/proxy_airtime_host_cpu_busy_ratio(\{[^}]*\})? 0\.\d/);
    bulk.close();
  });
});
