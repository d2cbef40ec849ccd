import { present } from '@fleet/service/invariant';
import { describe, expect, it } from 'vitest';
import { RwLock } from '../src/index.js';
import { families, labelsMax, overflowLabel } from '../src/stats.js';

// Figures are kept per lock name, not per lock object, and the number of series is bounded: a
// lock made per request adds to its name's figures, and labels past `labelsMax` share one series.
describe('module-level lock figures', () => {
  it('are shared by every lock of a name and bounded in labels', async () => {
    for (let request = 0; request < 100; request++) {
      const perRequest = new RwLock({ name: 'per-request' });
      await perRequest.read('route', () => request);
    }
    const family = present(families.get('per-request'), 'the per-request family');
    expect(family.read.size).toBe(1);
    expect(family.read.get('route')?.hold.count).toBe(100);
    expect(family.holds.length).toBe(0);

    const lock = new RwLock({ name: 'many-labels' });
    for (let label = 0; label < labelsMax + 100; label++)
      await lock.write(`label-${label}`, () => 1);
    const labels = present(families.get('many-labels'), 'the many-labels family').write;
    expect(labels.size).toBe(labelsMax + 1);
    expect(labels.get(overflowLabel)?.hold.count).toBe(100);
  });
});
