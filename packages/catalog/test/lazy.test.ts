import { until } from '@fleet/service/vitest-until';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Catalog, type CatalogOptions } from '../src/index.js';
import { startAgent } from './agent.js';
import { change, machineCells, quiet } from './fixtures.js';

// Lazy mode against a real corrosion agent: apps are read when first asked for and kept fresh
// from the change streams; the loader's bounds are shown by freezing the agent (SIGSTOP), so
// loads hang exactly as long as the test wants.
describe('lazy mode', () => {
  let agent: Awaited<ReturnType<typeof startAgent>>;
  const client = () => agent.client;
  const freeze = () => agent.freeze();
  const thaw = () => agent.thaw();
  const lazyCatalog = (options: Partial<CatalogOptions> = {}) =>
    agent.follow({ mode: 'lazy', ...options });

  beforeAll(async () => {
    agent = await startAgent();
    await agent.writeApp('web', ['w1', 'w2']);
    for (const app of ['a1', 'a2', 'a3', 'a4']) await agent.writeApp(app, [`${app}-m`]);
  });

  afterEach(() => agent?.unfollow());

  afterAll(async () => {
    await agent?.stop();
  });

  it('loads an app on first use, holds only that app, and follows its changes', async () => {
    const catalog = await lazyCatalog();
    expect(await catalog.stats()).toMatchObject({ apps: 0, machines: 0, ready: true });
    const decision = await catalog.route('web');
    expect(decision).toMatchObject({ kind: 'ok' });
    expect(await catalog.stats()).toMatchObject({ apps: 1, machines: 2 });
    // now held: answered from memory, without a promise
    expect(catalog.route('web')).not.toBeInstanceOf(Promise);
    // a change to an app not held is not kept: the held app's change after it, on the same
    // ordered stream, shows it was delivered and dropped
    await client().transaction([["UPDATE machines SET state = 'stopped' WHERE id = 'a1-m'", []]]);
    await client().transaction([["UPDATE machines SET state = 'stopped' WHERE id = 'w1'", []]]);
    const later = await until(
      'w1 stopped: one candidate left',
      () => catalog.route('web'),
      (next) => next.kind === 'ok' && next.candidates.length === 1,
    );
    expect(later).toMatchObject({ kind: 'ok', machine: { id: 'w2' } });
    expect(await catalog.stats()).toMatchObject({ apps: 1, machines: 2 });
  });

  it('runs one load per app however many requests ask for it at once', async () => {
    const catalog = await lazyCatalog();
    freeze();
    const asks = Array.from({ length: 50 }, () => catalog.route('web'));
    expect(await catalog.stats()).toMatchObject({ loadsRunning: 1, loadsQueued: 0 });
    thaw();
    const decisions = await Promise.all(asks);
    expect(new Set(decisions.map((decision) => decision.kind))).toEqual(new Set(['ok']));
  });

  it('sheds at once when the loads and the queue are full, and times out a load past its deadline', async () => {
    const catalog = await lazyCatalog({
      loadConcurrencyMax: 1,
      loadQueueMax: 1,
      loadTimeoutMs: 600,
    });
    freeze();
    const startedMs = Date.now();
    const running = catalog.route('a1');
    const queued = catalog.route('a2');
    await expect(catalog.route('a3')).rejects.toMatchObject({
      code: 'CATALOG_ERR_LOAD_SHED',
      app: 'a3',
    });
    expect(Date.now() - startedMs).toBeLessThan(300);
    await expect(running).rejects.toMatchObject({ code: 'CATALOG_ERR_LOAD_TIMEOUT' });
    await expect(queued).rejects.toMatchObject({ code: 'CATALOG_ERR_LOAD_TIMEOUT' });
    expect(Date.now() - startedMs).toBeLessThan(3_000);
    thaw();
    // the agent answers again: the same app loads
    const again = await until(
      'a route that does not fail',
      () => Promise.resolve(catalog.route('a1')).catch(() => null),
      (decision) => decision !== null,
    );
    expect(again?.kind).toMatch(/ok|no-machine/);
  });

  it('keeps a change that arrives while the app loads', async () => {
    const catalog = await lazyCatalog();
    freeze();
    const loading = catalog.route('a4');
    // What the change stream would deliver during the load: a machine the query will not see.
    const extra = machineCells({ id: 'a4-new', app: 'a4' });
    await catalog.apply('machines', change('insert', extra.machine));
    await catalog.apply('services', change('insert', extra.service));
    await catalog.apply('health_checks', change('insert', ['a4-m', 'alive', 'critical']));
    thaw();
    const decision = await loading;
    expect(decision.kind === 'ok' && decision.candidates.map((c) => c.machine.id)).toEqual([
      'a4-new',
    ]);
  });

  it('remembers an unknown app for negativeTtlMs, and forgets it when the app appears', async () => {
    const catalog = await lazyCatalog({ negativeTtlMs: 60_000 });
    expect(await catalog.route('ghost')).toEqual({ kind: 'no-app' });
    freeze(); // answered without asking corrosion
    expect(await catalog.route('ghost')).toEqual({ kind: 'no-app' });
    thaw();
    expect(await catalog.resolveHost('nowhere.example.com')).toBeUndefined();
    freeze();
    expect(await catalog.resolveHost('nowhere.example.com')).toBeUndefined();
    thaw();
    await agent.writeApp('ghost', ['g1']);
    await client().transaction([
      ["INSERT INTO app_hostnames (hostname, app) VALUES ('nowhere.example.com', 'ghost')", []],
    ]);
    expect(
      await until(
        'ghost routable',
        () => catalog.route('ghost'),
        (d) => d.kind === 'ok',
      ),
    ).toMatchObject({ kind: 'ok' });
    expect(
      await until(
        'the hostname resolving to ghost',
        () => catalog.resolveHost('nowhere.example.com'),
        (app) => app === 'ghost',
      ),
    ).toBe('ghost');
  });

  it('evicts the least recently used idle apps past maxLoadedApps, and loads them again on use', async () => {
    const catalog = await lazyCatalog({ maxLoadedApps: 2 });
    await catalog.route('a1');
    await catalog.route('a2');
    const release = catalog.begin('a2-m'); // busy: never evicted
    await catalog.route('web');
    await until(
      'the eviction down to 2 apps',
      () => catalog.stats(),
      (stats) => stats.apps <= 2,
    );
    expect(catalog.route('a2')).not.toBeInstanceOf(Promise); // still held
    expect(catalog.route('a1')).toBeInstanceOf(Promise); // evicted: loads again
    expect(await catalog.route('a1')).not.toEqual({ kind: 'no-app' });
    release();
  });

  it('keeps serving held apps from their rows through a reset, and reads them again after it', async () => {
    const catalog = await lazyCatalog();
    expect(await catalog.route('a3')).toMatchObject({ kind: 'ok' });
    // A row the catalog holds that corrosion does not have (as after changes it missed).
    const ghost = machineCells({ id: 'a3-ghost', app: 'a3' });
    await catalog.apply('machines', change('insert', ghost.machine));
    await catalog.apply('services', change('insert', ghost.service));
    const machines = (d: Awaited<ReturnType<Catalog['route']>>) =>
      d.kind === 'ok' ? d.candidates.map((c) => c.machine.id).sort() : d.kind;
    expect(machines(await catalog.route('a3'))).toEqual(['a3-ghost', 'a3-m']);

    await catalog.apply('machines', { type: 'reset', columns: [] });
    const during = catalog.route('a3');
    expect(during).not.toBeInstanceOf(Promise); // still held, answered from memory
    expect(machines(await during)).toEqual(['a3-ghost', 'a3-m']);
    expect(await catalog.stats()).toMatchObject({ apps: 1, resyncing: { reset: 1 }, fresh: false });
    // an app not held cannot load before the stream is back (a load could miss changes)
    await expect(catalog.route('a1')).rejects.toMatchObject({ code: 'CATALOG_ERR_NOT_READY' });

    await catalog.apply('machines', { type: 'ready', changeId: 0 });
    // read again from corrosion in the background, without a request asking: the ghost goes
    const stats = await until(
      'every app held read again',
      () => catalog.stats(),
      (next) => next.resyncing.reset === 0,
    );
    expect(stats).toMatchObject({ apps: 1, resyncing: { reset: 0 } });
    expect(machines(catalog.route('a3') as Awaited<ReturnType<Catalog['route']>>)).toEqual([
      'a3-m',
    ]);
    expect(await catalog.route('a1')).not.toEqual({ kind: 'no-app' });
  });

  // Seed 002: an update that cannot be applied (its write lock timed out) must not leave the
  // app wrong for ever: the app is quarantined and reloaded from corrosion on its next request.
  it('reloads an app whose update timed out, in eager mode too', async () => {
    const catalog = await lazyCatalog({ mode: 'eager', writeTimeoutMs: 100 });
    expect(await catalog.route('a3')).toMatchObject({ kind: 'ok' });
    const inFlight = catalog.begin('a3-m'); // a request that outlives the reload
    let release!: () => void;
    const holding = catalog.writeApp(
      'a3',
      'test-hold',
      () =>
        new Promise<void>((resolve) => {
          release = resolve;
        }),
    );
    await client().transaction([["UPDATE machines SET state = 'stopping' WHERE id = 'a3-m'", []]]);
    // the stream's update times out on the held lock: its app waits to be read again
    await until(
      'the refused update waiting for its resync',
      () => catalog.stats(),
      (stats) => stats.resyncing.refused === 1,
    );
    release();
    await holding;
    expect(await catalog.route('a3')).toMatchObject({ kind: 'no-machine' });
    await client().transaction([["UPDATE machines SET state = 'started' WHERE id = 'a3-m'", []]]);
    const decision = await until(
      'a3 routable again',
      () => catalog.route('a3'),
      (d) => d.kind === 'ok',
    );
    // the reload kept the machine's entry: its load still counts the request, and its release
    expect(decision).toMatchObject({ kind: 'ok', machine: { id: 'a3-m', load: 1 } });
    inFlight();
    expect(decision.kind === 'ok' && decision.machine.load).toBe(0);
  });

  it('refuses to load before its change streams are attached', async () => {
    const catalog = new Catalog({ domain: 'fleet.test', logger: quiet, mode: 'lazy' });
    await expect(catalog.route('web')).rejects.toMatchObject({ code: 'CATALOG_ERR_NOT_READY' });
  });
});
