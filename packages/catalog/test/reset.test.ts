import { describe, expect, it } from 'vitest';
import type { Catalog } from '../src/index.js';
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
