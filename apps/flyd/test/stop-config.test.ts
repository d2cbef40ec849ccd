import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callExpecting, expectStatus } from './expect-status.js';
import { call, FlydFixture } from './flyd-fixture.js';
import { settledIn } from './machine-wait.js';

/**
 * A machine that says which signal it got; it exits on SIGINT and ignores SIGTERM, so only its
 * stop_config's signal stops it before the grace period ends in SIGKILL.
 */
const noisy = (stop_config: Record<string, unknown>) => ({
  image: 'hello',
  init: {
    exec: [
      'node',
      '-e',
      `process.on('SIGINT', () => { console.log('got SIGINT'); setTimeout(() => process.exit(0), 20); });
       process.on('SIGTERM', () => console.log('got SIGTERM'));
       console.log('up');
       setInterval(() => {}, 1000);`,
    ],
  },
  restart: { policy: 'no' },
  stop_config,
});

// A real flyd over a real corrosion: stop, restart and update stop a machine with its config's
// stop_config — Fly's `{signal, timeout}`, the timeout a Go duration or seconds — unless the
// request names a signal or timeout itself. flyd's own grace period and the configs' long ones
// are 10 minutes: a stop that used the wrong one would outlast the test (no clock is read).
describe('config.stop_config', () => {
  const fixture = new FlydFixture(['--stop-timeout-ms', '600000']);
  let api = '';

  beforeAll(async () => {
    api = await fixture.start();
  });
  afterAll(() => fixture.close());

  /** A call that must succeed (every call is checked). */
  const ok = (method: string, path: string, body?: unknown) =>
    callExpecting(api, method, path, body);

  /** The machine's lines that start with `prefix`, once there are `count` (output lags the exit). */
  const lines = (id: string, prefix: string, count: number) =>
    until(`${count} lines "${prefix}..." from ${id}`, async () => {
      const answer = expectStatus(await call(api, 'GET', `/v1/machines/${id}/logs`), 200, 'logs');
      const all = answer.body as unknown as { message: string }[];
      const got = all.map((line) => line.message).filter((message) => message.startsWith(prefix));
      return got.length >= count ? got : undefined;
    });
  /** The signals the machine reported, once there are `count`. */
  const logs = (id: string, count: number) => lines(id, 'got', count);
  /** Waits until the machine's `count`th launch has installed its signal handlers. */
  const up = (id: string, count: number) => lines(id, 'up', count);
  const started = async (stop_config: Record<string, unknown>) => {
    const id = (await ok('POST', '/v1/machines', { app: 'stops', config: noisy(stop_config) })).body
      .id as string;
    await settledIn(api, id, 'started'); // started, and the create run is over
    await up(id, 1);
    return id;
  };
  const timed = async (what: () => Promise<unknown>) => {
    const startedMs = Date.now();
    await what();
    return Date.now() - startedMs;
  };

  it('stops and restarts with the configured signal when the request names none', async () => {
    const id = await started({ signal: 'SIGINT', timeout: '10m' });
    await ok('POST', `/v1/machines/${id}/stop`); // SIGINT ends it: no 10 min wait
    expect(await logs(id, 1)).toEqual(['got SIGINT']);

    await ok('POST', `/v1/machines/${id}/start`);
    await settledIn(api, id, 'started');
    await up(id, 2);
    await ok('POST', `/v1/machines/${id}/restart`);
    expect(await logs(id, 2)).toEqual(['got SIGINT', 'got SIGINT']);

    // The request's own signal wins over the config's.
    await up(id, 3);
    await ok('POST', `/v1/machines/${id}/stop`, { signal: 'SIGTERM', timeout: 0.3 });
    expect(await logs(id, 3)).toEqual(['got SIGINT', 'got SIGINT', 'got SIGTERM']);
    await ok('DELETE', `/v1/machines/${id}`);
  }, 30_000);

  it('waits the configured grace period (a Go duration or seconds) before SIGKILL', async () => {
    // SIGTERM is ignored: the grace period decides, 300 ms here against flyd's 10 minutes; the
    // stop cannot end sooner than it (a lower bound: a busy machine only makes it later).
    for (const timeout of ['300ms', 0.3]) {
      const id = await started({ timeout });
      const stopMs = await timed(() => ok('POST', `/v1/machines/${id}/stop`));
      expect(stopMs).toBeGreaterThanOrEqual(300);
      expect(await logs(id, 1)).toEqual(['got SIGTERM']);
      await ok('DELETE', `/v1/machines/${id}`);
    }
  }, 30_000);

  it("stops an updated machine with the old config's stop_config", async () => {
    const id = await started({ signal: 'INT' });
    await ok('POST', `/v1/machines/${id}`, { config: noisy({}) });
    expect(await logs(id, 1)).toEqual(['got SIGINT']);
    await settledIn(api, id, 'started');
    await ok('POST', `/v1/machines/${id}/stop`, { timeout: 0.1 });
    await ok('DELETE', `/v1/machines/${id}`);
  }, 30_000);

  it('refuses a stop_config it cannot honour, naming the field', async () => {
    for (const [stop_config, field] of [
      [{ signal: 'SIGNOPE' }, 'config.stop_config.signal'],
      [{ timeout: 'soon' }, 'config.stop_config.timeout'],
      [{ timeout: '2h' }, 'config.stop_config.timeout'],
    ] as const) {
      const refused = await call(api, 'POST', '/v1/machines', {
        app: 'stops',
        config: noisy(stop_config),
      });
      expect(refused).toMatchObject({ status: 400, body: { code: 'FLYD_ERR_BAD_CONFIG' } });
      expect(refused?.body.error).toContain(field);
    }
  });
});
