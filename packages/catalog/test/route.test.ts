import { present } from '@fleet/service/invariant';
import { describe, expect, it, vi } from 'vitest';
import type { Catalog, RouteDecision } from '../src/index.js';
import { catalogWith, change, machineCells, ports } from './fixtures.js';

const limits = { type: 'requests', soft_limit: 2, hard_limit: 3 };

function ids(decision: RouteDecision): string[] {
  return decision.kind === 'ok' ? decision.candidates.map((candidate) => candidate.machine.id) : [];
}

async function routeOk(catalog: Catalog, options = {}) {
  const decision = await catalog.route('web', options);
  if (decision.kind !== 'ok') throw new Error(`expected ok, got ${JSON.stringify(decision)}`);
  return decision;
}

function loadUp(catalog: Catalog, machineId: string, count: number): (() => void)[] {
  return Array.from({ length: count }, () => catalog.begin(machineId));
}

// route() follows Fly's load balancing: band (soft/hard limits), then locality, then RTT,
// random among equals; every scenario builds a small fleet by hand and reads the candidates.
describe('route selection', () => {
  it('prefers the lowest band, and never offers a machine at its hard limit', async () => {
    const catalog = await catalogWith([
      { id: 'a', concurrency: limits },
      { id: 'b', concurrency: limits },
    ]);
    loadUp(catalog, 'a', 2); // a: at soft limit → band 1
    const decision = await routeOk(catalog);
    expect(ids(decision)).toEqual(['b', 'a']);
    expect(decision.candidates.map((candidate) => candidate.band)).toEqual([0, 1]);
    loadUp(catalog, 'a', 1); // a: at hard limit → not a candidate
    expect(ids(await routeOk(catalog))).toEqual(['b']);
  });

  it('uses Fly defaults when a service sets no concurrency: connections, soft 20, no hard limit', async () => {
    const catalog = await catalogWith([{ id: 'a' }]);
    loadUp(catalog, 'a', 500);
    const decision = await routeOk(catalog);
    expect(decision.candidates[0]).toMatchObject({ band: 1 });
    expect(decision.candidates[0]?.service.concurrency).toEqual({
      type: 'connections',
      softLimit: 20,
      hardLimit: Number.POSITIVE_INFINITY,
    });
  });

  it('stays in its region while a local machine is below its hard limit, then goes to the closest', async () => {
    const catalog = await catalogWith([
      { id: 'local', region: 'ams', concurrency: limits },
      { id: 'near', region: 'fra', concurrency: limits },
      { id: 'far', region: 'syd', concurrency: limits },
    ]);
    loadUp(catalog, 'local', 2); // band 1, but local beats a remote band 0
    expect(ids(await routeOk(catalog))).toEqual(['local', 'near', 'far']);
    loadUp(catalog, 'local', 1); // at hard limit: leave the region, closest first
    const decision = await routeOk(catalog);
    expect(ids(decision)).toEqual(['near', 'far']);
    const [nearMs, farMs] = decision.candidates.map((candidate) => candidate.rttMs);
    expect(nearMs).toBeLessThan(present(farMs, "the far machine's RTT"));
  });

  it('fails over to another region when the local machines are unhealthy', async () => {
    const catalog = await catalogWith([
      { id: 'local', region: 'ams' },
      { id: 'far', region: 'syd' },
    ]);
    await catalog.apply('health_checks', change('insert', ['local', 'alive', 'critical']));
    expect(ids(await routeOk(catalog))).toEqual(['far']);
  });

  it('prefers a measured RTT to the distance estimate', async () => {
    const catalog = await catalogWith([
      { id: 'near', region: 'fra' },
      { id: 'far', region: 'syd' },
    ]);
    expect(ids(await routeOk(catalog))).toEqual(['near', 'far']);
    catalog.recordRtt('host-syd', 2);
    catalog.recordRtt('host-fra', 80);
    expect(ids(await routeOk(catalog))).toEqual(['far', 'near']);
  });

  it('keeps a near host first through a PING that waited out a retransmission', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const catalog = await catalogWith([
        { id: 'near', region: 'fra' },
        { id: 'far', region: 'syd' },
      ]);
      catalog.recordRtt('host-fra', 40);
      catalog.recordRtt('host-syd', 120);
      vi.advanceTimersByTime(5_000);
      catalog.recordRtt('host-fra', 1_040); // 10 % loss on the link: one PING retransmitted
      catalog.recordRtt('host-syd', 120);
      expect(ids(await routeOk(catalog))).toEqual(['near', 'far']);
      // A mean would have ranked fra behind syd for minutes; a path that really grew stays so.
      for (let sample = 0; sample < 8; sample++) {
        vi.advanceTimersByTime(5_000);
        catalog.recordRtt('host-fra', 200);
        catalog.recordRtt('host-syd', 120);
      }
      expect(ids(await routeOk(catalog))).toEqual(['far', 'near']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('breaks ties at random among equally loaded, equally close machines', async () => {
    const catalog = await catalogWith([{ id: 'a' }, { id: 'b' }, { id: 'c' }]);
    const first = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const id = (await routeOk(catalog)).machine.id;
      first.set(id, (first.get(id) ?? 0) + 1);
    }
    expect([...first.keys()].sort()).toEqual(['a', 'b', 'c']);
    for (const count of first.values()) expect(count).toBeGreaterThan(50);
  });

  it('honours fly-prefer-region and fly-force-region', async () => {
    const catalog = await catalogWith([
      { id: 'local', region: 'ams' },
      { id: 'far', region: 'syd' },
    ]);
    expect(ids(await routeOk(catalog, { preferRegion: 'syd' }))).toEqual(['far', 'local']);
    expect(ids(await routeOk(catalog, { preferRegion: 'fra' }))).toEqual(['local', 'far']);
    expect(ids(await routeOk(catalog, { forceRegion: 'syd' }))).toEqual(['far']);
    const none = await catalog.route('web', { forceRegion: 'fra' });
    expect(none).toMatchObject({ kind: 'no-machine', saturated: false });
    expect(none.kind === 'no-machine' && none.reason).toMatch(/region fra/);
  });

  it('honours fly-prefer-instance-id and fly-force-instance-id', async () => {
    const catalog = await catalogWith([
      { id: 'local', region: 'ams' },
      { id: 'far', region: 'syd' },
    ]);
    expect(ids(await routeOk(catalog, { preferInstance: 'far' }))).toEqual(['far', 'local']);
    expect(ids(await routeOk(catalog, { forceInstance: 'far' }))).toEqual(['far']);
    await catalog.apply(
      'machines',
      change('update', machineCells({ id: 'far', region: 'syd', state: 'stopped' }).machine),
    );
    expect(ids(await routeOk(catalog, { preferInstance: 'far' }))).toEqual(['local']);
    const forced = await catalog.route('web', { forceInstance: 'far' });
    expect(forced.kind === 'no-machine' && forced.reason).toMatch(/machine far cannot take/);
  });

  it('leaves out excluded machines (fly-replay elsewhere, or a machine that already failed)', async () => {
    const catalog = await catalogWith([{ id: 'a' }, { id: 'b' }]);
    expect(ids(await routeOk(catalog, { exclude: ['a'] }))).toEqual(['b']);
  });

  it('picks the service the request came in on', async () => {
    const catalog = await catalogWith([
      { id: 'web1', ports: ports(80, 443) },
      { id: 'db1', internalPort: 5432, ports: JSON.stringify([{ port: 5432, handlers: [] }]) },
    ]);
    expect(ids(await routeOk(catalog, { port: 5432 }))).toEqual(['db1']);
    expect(ids(await routeOk(catalog, { port: 443 }))).toEqual(['web1']);
    expect(ids(await routeOk(catalog))).toEqual(['web1']); // no port: the http service
    expect(await catalog.route('web', { port: 22 })).toMatchObject({ kind: 'no-machine' });
  });

  it('reports stopped machines with autostart, closest first, when nothing is under its soft limit', async () => {
    const catalog = await catalogWith([
      { id: 'busy', concurrency: limits },
      { id: 'sleep-far', region: 'syd', state: 'stopped', autostart: true },
      { id: 'sleep-near', region: 'fra', state: 'suspended', autostart: true },
      { id: 'off', state: 'stopped', autostart: false },
    ]);
    expect((await routeOk(catalog)).startable).toEqual([]);
    loadUp(catalog, 'busy', 2);
    expect((await routeOk(catalog)).startable.map((machine) => machine.id)).toEqual([
      'sleep-near',
      'sleep-far',
    ]);
    loadUp(catalog, 'busy', 1);
    const decision = await catalog.route('web');
    expect(decision).toMatchObject({ kind: 'no-machine', saturated: true });
    expect(decision.kind === 'no-machine' && decision.startable.length).toBe(2);
  });

  it('offers no machine of a down host, neither to route to nor to autostart, until it is ready', async () => {
    const catalog = await catalogWith([
      { id: 'lost', region: 'fra', concurrency: limits },
      { id: 'lost-asleep', region: 'fra', state: 'stopped', autostart: true },
      { id: 'kept', region: 'syd', concurrency: limits },
    ]);
    const host = (status: string) => ['host-fra', 'fra', 'worker', '10.0.0.8:4282', status];
    await catalog.apply('hosts', change('insert', host('down')));
    loadUp(catalog, 'kept', 2); // under no soft limit: autostart candidates are looked for
    const decision = await routeOk(catalog);
    expect(ids(decision)).toEqual(['kept']);
    expect(decision.startable).toEqual([]);
    expect(catalog.machine('lost')?.toJSON()).toMatchObject({ hostStatus: 'down' });
    await catalog.apply('hosts', change('update', host('ready')));
    expect(ids(await routeOk(catalog))).toEqual(['lost', 'kept']);
    loadUp(catalog, 'lost', 2);
    expect((await routeOk(catalog)).startable.map((machine) => machine.id)).toEqual([
      'lost-asleep',
    ]);
  });

  it('counts load reported by a backhaul for machines on other hosts', async () => {
    const catalog = await catalogWith([
      { id: 'a', concurrency: limits },
      { id: 'b', concurrency: limits },
    ]);
    catalog.reportLoad('a', 3);
    expect(ids(await routeOk(catalog))).toEqual(['b']);
    catalog.reportLoad('a', 0);
    expect(ids(await routeOk(catalog)).sort()).toEqual(['a', 'b']);
    expect(catalog.machine('a')).toMatchObject({ id: 'a', app: 'web', remoteLoad: 0 });
  });
});

// When every machine is at its hard limit, admit() waits (bounded) for a release.
describe('admission', () => {
  it('waits for capacity and routes once a request on the app finishes', async () => {
    const catalog = await catalogWith([{ id: 'a', concurrency: limits }]);
    const release = present(loadUp(catalog, 'a', 3)[0], 'a release');
    const admitted = catalog.admit('web', { timeoutMs: 5_000 });
    // queued, not answered: only a release can make the app routable again
    await vi.waitFor(async () =>
      expect(await catalog.stats()).toMatchObject({ admissionWaiting: 1 }),
    );
    release();
    release(); // a second call does nothing
    expect(await admitted).toMatchObject({ kind: 'ok', machine: { id: 'a', load: 2 } });
    expect(await catalog.stats()).toMatchObject({ admissionWaiting: 0 });
  });

  it('sheds past admissionQueueMax and times out past the deadline, with their own codes', async () => {
    const catalog = await catalogWith([{ id: 'a', concurrency: limits }], { admissionQueueMax: 1 });
    loadUp(catalog, 'a', 3);
    const waiting = catalog.admit('web', { timeoutMs: 300 });
    const startedMs = Date.now();
    await expect(catalog.admit('web', { timeoutMs: 5_000 })).rejects.toMatchObject({
      code: 'CATALOG_ERR_ADMISSION_SHED',
    });
    expect(Date.now() - startedMs).toBeLessThan(200);
    await expect(waiting).rejects.toMatchObject({ code: 'CATALOG_ERR_ADMISSION_TIMEOUT' });
    // an app that is not saturated is admitted at once
    expect(await catalog.admit('nope')).toEqual({ kind: 'no-app' });
  });
});
