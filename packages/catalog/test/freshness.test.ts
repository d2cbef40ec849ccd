import { until } from '@fleet/service/vitest-until';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { scrapeMetrics, startAgent } from './agent.js';

type Agent = Awaited<ReturnType<typeof startAgent>>;
type Metrics = Awaited<ReturnType<typeof scrapeMetrics>>;

// The probe: with corrosion paused, today's proxy kept routing to machines that were
// gone while saying `ready`. The Catalog knows how fresh it is: a paused agent (SIGSTOP) leaves
// every table without events or answers, and past `staleAfterMs` each says stale (stats and a
// gauge); it keeps routing from what it holds (ready), and is fresh again once the agent answers.
describe('freshness', () => {
  let agent: Agent;
  let metrics: Metrics;

  beforeAll(async () => {
    metrics = await scrapeMetrics();
    agent = await startAgent();
    await agent.writeApp('web', ['w1']);
  });
  afterEach(() => agent?.unfollow());
  afterAll(async () => {
    await agent?.stop();
    await metrics?.stop();
  });

  it('says every table is stale while the agent answers nothing, and fresh again after', async () => {
    // 3 s: a probe every second, each with a second to answer, so a loaded machine's slow probe
    // does not make quiet tables stale
    const staleAfterMs = 3_000;
    const catalog = await agent.follow({ staleAfterMs });
    const fresh = await until(
      'every table fresh',
      () => catalog.stats(),
      (stats) => stats.fresh,
    );
    expect(fresh.tables.machines).toMatchObject({ attached: true, stale: false });
    // quiet tables stay fresh past staleAfterMs without an event: the agent answers the probes
    const quiet = await until(
      'every table quiet past staleAfterMs',
      () => catalog.stats(),
      (stats) =>
        Object.values(stats.tables).every((table) => (table.lastEventAgeMs ?? 0) > staleAfterMs),
    );
    expect(quiet.fresh).toBe(true);
    expect(await metrics.sample('catalog_stale_tables')).toBe(0);

    agent.freeze();
    const stale = await until(
      'every table stale',
      () => catalog.stats(),
      (stats) => Object.values(stats.tables).every((table) => table.stale),
    );
    expect(stale.fresh).toBe(false);
    expect(stale.tables.machines).toMatchObject({ attached: true, stale: true });
    expect(stale.tables.machines.lastEventAgeMs).toBeGreaterThan(staleAfterMs);
    expect(await metrics.sample('catalog_stale_tables')).toBe(8);
    // still a table to route from: requests are served from what it holds
    expect(catalog.ready).toBe(true);
    expect(catalog.route('web')).toMatchObject({ kind: 'ok' });

    agent.thaw();
    expect(
      await until(
        'the catalog fresh again',
        () => catalog.fresh,
        (isFresh) => isFresh,
      ),
    ).toBe(true);
  });
});
