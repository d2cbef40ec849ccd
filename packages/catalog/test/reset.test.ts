import { until } from '@fleet/service/vitest-until';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog } from '../src/index.js';
import { startAgent } from './agent.js';
import { catalogWith, change, machineCells, row } from './fixtures.js';

const ids = (decision: Awaited<ReturnType<Catalog['route']>>) =>
  decision.kind === 'ok' ? decision.candidates.map((c) => c.machine.id).sort() : decision.kind;

// A stream that starts over (reset, its rows again, ready) must never leave routing with an
// empty table: the eager Catalog keeps the new rows beside the old table and swaps them in whole
// at `ready`. Shown by routing between every event of a reset, fed through apply() exactly as
// follow() feeds it.
describe('subscription reset (eager)', () => {
  it('answers from the old table during a reset and from the new one after it', async () => {
    const catalog = await catalogWith([{ id: 'm1' }, { id: 'm2' }, { id: 'o1', app: 'other' }]);
    // m3's service is known before the reset; its machine row only comes with the new rows.
    await catalog.apply('services', change('insert', machineCells({ id: 'm3' }).service));
    const inFlight = catalog.begin('m2');
    expect(ids(await catalog.route('web'))).toEqual(['m1', 'm2']);

    await catalog.apply('machines', { type: 'reset', columns: [] });
    expect(catalog.ready).toBe(true); // there is still a whole table to route from
    expect(catalog.fresh).toBe(false);
    const during = await catalog.stats();
    expect(during.tables.machines).toMatchObject({ attached: false, stale: true });
    expect(ids(await catalog.route('web'))).toEqual(['m1', 'm2']);
    for (const id of ['m2', 'm3'])
      await catalog.apply('machines', row(machineCells({ id }).machine));
    await catalog.apply('machines', row(machineCells({ id: 'o1', app: 'other' }).machine));
    // the new rows (m1 gone, m3 new) are not served before the stream's ready
    expect(ids(await catalog.route('web'))).toEqual(['m1', 'm2']);
    expect(ids(await catalog.route('other'))).toEqual(['o1']);

    await catalog.apply('machines', { type: 'ready', changeId: 0 });
    expect(ids(await catalog.route('web'))).toEqual(['m2', 'm3']);
    expect(ids(await catalog.route('other'))).toEqual(['o1']);
    expect((await catalog.stats()).tables.machines).toMatchObject({ attached: true });
    // m2 kept its entry through the swap: the request in flight still counts, and releases
    expect(catalog.machine('m2')?.load).toBe(1);
    inFlight();
    expect(catalog.machine('m2')?.load).toBe(0);
  });

  it('keeps hosts and health checks through their resets until the new rows swap in', async () => {
    const catalog = await catalogWith([{ id: 'm1' }, { id: 'm2' }]);
    await catalog.apply('hosts', row(['host-ams', 'ams', 'worker', '10.0.0.9:4280', 'ready']));
    await catalog.apply('health_checks', row(['m1', 'alive', 'critical']));
    expect(ids(await catalog.route('web'))).toEqual(['m2']);

    await catalog.apply('hosts', { type: 'reset', columns: [] });
    await catalog.apply('health_checks', { type: 'reset', columns: [] });
    const decision = await catalog.route('web');
    expect(ids(decision)).toEqual(['m2']); // m1 still critical, the host still known
    expect(decision.kind === 'ok' && decision.machine.backhaulAddr).toBe('10.0.0.9:4280');

    await catalog.apply('hosts', row(['host-ams', 'ams', 'worker', '10.0.0.7:4280', 'ready']));
    await catalog.apply('health_checks', row(['m2', 'alive', 'critical']));
    await catalog.apply('hosts', { type: 'ready', changeId: 0 });
    await catalog.apply('health_checks', { type: 'ready', changeId: 0 });
    const after = await catalog.route('web');
    expect(ids(after)).toEqual(['m1']);
    expect(after.kind === 'ok' && after.machine.backhaulAddr).toBe('10.0.0.7:4280');
  });
});

// The same against a real corrosion agent that restarts: its subscriptions are gone, so every
// stream starts over (reset, rows, ready). Routing is sampled all along: every answer comes from
// the old table until the new one is in, in both modes.
describe('subscription reset after an agent restart', () => {
  let agent: Awaited<ReturnType<typeof startAgent>>;

  beforeAll(async () => {
    agent = await startAgent();
    await agent.writeApp('web', ['w1', 'w2']);
  });
  afterEach(() => agent?.unfollow());
  afterAll(async () => {
    await agent?.stop();
  });

  it.each(['eager', 'lazy'] as const)(
    '%s: never answers from an empty table',
    async (mode) => {
      const catalog = await agent.follow({ mode });
      expect(ids(await catalog.route('web'))).toEqual(['w1', 'w2']);
      // A machine the Catalog holds that corrosion does not have (as a change it missed).
      const ghost = machineCells({ id: 'ghost', app: 'web' });
      await catalog.apply('machines', change('insert', ghost.machine));
      await catalog.apply('services', change('insert', ghost.service));
      expect(ids(await catalog.route('web'))).toEqual(['ghost', 'w1', 'w2']);

      const answers: unknown[] = [];
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          answers.push(
            await Promise.resolve(catalog.route('web')).then(ids, (error) => error.code),
          );
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      try {
        await agent.restart();
        const after = await until(
          'the ghost machine gone',
          async () => ids(await catalog.route('web')),
          (machines) => Array.isArray(machines) && !machines.includes('ghost'),
          30_000,
        );
        expect(after).toEqual(['w1', 'w2']);
      } finally {
        sampling = false;
        await sampler;
      }
      // every stream started over (each in its own time) and every app held was read again
      const settled = await until(
        'fresh, with every app read again',
        () => catalog.stats(),
        (stats) => stats.fresh && stats.resyncing.reset === 0,
        30_000,
      );
      expect(settled).toMatchObject({ fresh: true, resyncing: { reset: 0 } });
      expect(ids(await catalog.route('web'))).toEqual(['w1', 'w2']);
      const wrong = answers.filter(
        (answer) => !Array.isArray(answer) || !answer.includes('w1') || !answer.includes('w2'),
      );
      expect(wrong).toEqual([]);
      expect(answers.length).toBeGreaterThan(10);
    },
    60_000,
  );
});
