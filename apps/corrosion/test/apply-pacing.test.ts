// The apply queue's adaptive batches: the wait for company doubles while changesets arrive fast
// (bounded), halves back while they arrive slowly, and holds between the two thresholds; a real
// queue over a real store grows its wait on a burst and shrinks it again on a trickle.
import { createLogger } from '@fleet/service';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ApplyOutcome } from '../src/replication/apply.js';
import { type ApplyPacing, nextDelayMs } from '../src/replication/apply-pacing.js';
import { ApplyQueue } from '../src/replication/apply-queue.js';
import type { Store } from '../src/store.js';
import { allChangesets, exec, openStore, rows } from './crdt-helpers.js';

const pacing: ApplyPacing = { delayMsMin: 20, delayMsMax: 100, deepPerSecond: 400 };

describe('the next wait', () => {
  it('doubles at or past the deep rate, up to the bound', () => {
    expect(nextDelayMs(pacing, 20, 8, 20)).toBe(40); // 400 per second
    expect(nextDelayMs(pacing, 80, 500, 1)).toBe(100);
    expect(nextDelayMs(pacing, 100, 500, 1)).toBe(100);
  });

  it('halves below half the deep rate, down to the floor', () => {
    expect(nextDelayMs(pacing, 100, 1, 100)).toBe(50);
    expect(nextDelayMs(pacing, 20, 1, 20)).toBe(20);
  });

  it('holds between half the deep rate and the deep rate', () => {
    expect(nextDelayMs(pacing, 40, 12, 40)).toBe(40); // 300 per second
  });
});

describe('the apply queue', () => {
  const opened: { store: Store; queue?: ApplyQueue }[] = [];
  afterEach(() => {
    for (const { store, queue } of opened.splice(0)) {
      queue?.close();
      store.close();
    }
  });

  it('grows its wait on a burst and shrinks it back on a trickle, applying everything', async () => {
    const origin = openStore();
    opened.push({ store: origin });
    for (let at = 0; at < 300; at++) exec(origin, 'INSERT INTO machines (id) VALUES (?)', [at]);
    const sets = allChangesets(origin);
    const receiver = openStore();
    const logger = createLogger('apply-pacing-test');
    logger.level = 'silent';
    let applied = 0;
    const queue = new ApplyQueue(receiver, {
      batchMax: 100,
      pacing,
      queueMax: 10_000,
      logger,
      onApplied: (outcome: ApplyOutcome) => {
        applied += outcome.fresh.length;
      },
    });
    opened.push({ store: receiver, queue });

    queue.push(sets.slice(0, 299)); // a burst: far past 400 per second
    await vi.waitFor(() => expect(applied).toBe(299), { timeout: 20_000 });
    expect(queue.delayMs).toBe(pacing.delayMsMax);

    // One changeset per batch, each after the last was applied: a few per second at most.
    queue.push(sets.slice(299));
    await vi.waitFor(() => expect(applied).toBe(300), { timeout: 20_000 });
    expect(queue.delayMs).toBe(pacing.delayMsMax / 2);
    expect(rows(receiver)).toHaveLength(300);
  });
});
