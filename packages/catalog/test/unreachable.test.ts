import { until } from '@fleet/service/vitest-until';
import { describe, expect, it } from 'vitest';
import type { Catalog } from '../src/index.js';
import { catalogWith } from './fixtures.js';

const order = (decision: Awaited<ReturnType<Catalog['route']>>) =>
  decision.kind === 'ok' ? decision.candidates.map((c) => c.machine.id) : decision.kind;

// A machine whose connect failed goes after every reachable machine — not removed, so when all
// are down they are still tried — until a request to it succeeds or unreachableTtlMs passes.
describe('machines that refuse connections', () => {
  it('ranks an unreachable machine after every reachable one until it answers again', async () => {
    const catalog = await catalogWith([
      { id: 'local', region: 'ams' },
      { id: 'near', region: 'fra' },
      { id: 'far', region: 'syd' },
    ]);
    expect(order(await catalog.route('web'))).toEqual(['local', 'near', 'far']);
    catalog.machineUnreachable('local');
    expect(order(await catalog.route('web'))).toEqual(['near', 'far', 'local']);
    expect(await catalog.stats()).toMatchObject({ machinesUnreachable: 1 });
    expect(catalog.machine('local')?.toJSON()).toMatchObject({ unreachable: true });
    // all down: still every one, in their usual order
    catalog.machineUnreachable('near');
    catalog.machineUnreachable('far');
    expect(order(await catalog.route('web'))).toEqual(['local', 'near', 'far']);
    catalog.machineReachable('near');
    expect(order(await catalog.route('web'))).toEqual(['near', 'local', 'far']);
    expect(await catalog.stats()).toMatchObject({ machinesUnreachable: 2 });
    catalog.machineUnreachable('unknown-machine'); // not held: nothing to mark
    expect(await catalog.stats()).toMatchObject({ machinesUnreachable: 2 });
  });

  it('forgets the mark after unreachableTtlMs', async () => {
    const catalog = await catalogWith([{ id: 'local' }, { id: 'near', region: 'fra' }], {
      unreachableTtlMs: 300,
    });
    catalog.machineUnreachable('local');
    expect(order(await catalog.route('web'))).toEqual(['near', 'local']);
    const later = await until(
      'the local machine first again',
      () => catalog.route('web'),
      (decision) => order(decision)[0] === 'local',
    );
    expect(order(later)).toEqual(['local', 'near']);
    expect(await catalog.stats()).toMatchObject({ machinesUnreachable: 0 });
  });
});
