import { LockError } from '@fleet/locks';
import { until } from '@fleet/service/vitest-until';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { faultOf } from '../src/quarantine.js';
import { scrapeMetrics, startAgent } from './agent.js';
import { machineCells } from './fixtures.js';

type Agent = Awaited<ReturnType<typeof startAgent>>;
type Metrics = Awaited<ReturnType<typeof scrapeMetrics>>;

// An update that does not apply is never lost. Against a real corrosion agent: an update its
// lock refused (a write timeout) has its app read again from corrosion in the background; an
// update at fault (seed 002: it re-enters the catalog lock) quarantines its app only — listed,
// counted, its last rows still served, every other app routing — until a resync applies cleanly.
describe('updates that do not apply', () => {
  let agent: Agent;
  let metrics: Metrics;

  beforeAll(async () => {
    metrics = await scrapeMetrics();
    agent = await startAgent();
    await agent.writeApp('q1', ['q1-m']);
    await agent.writeApp('q2', ['q2-m']);
    await agent.writeApp('r1', ['r1-m']);
  });
  afterEach(() => agent?.unfollow());
  afterAll(async () => {
    await agent?.stop();
    await metrics?.stop();
  });

  it('quarantines the app whose update re-enters the catalog lock (seed 002), and every other app keeps routing', async () => {
    const catalog = await agent.follow({ quarantineRetryMs: 300 });
    expect(catalog.route('q1')).toMatchObject({ kind: 'ok', machine: { id: 'q1-m' } });
    // Seed 002: applying a virtual service's configuration asks for the catalog lock while its
    // own flow already holds it — the deadlock that took every proxy down.
    const stopped = machineCells({ id: 'q1-m', app: 'q1', state: 'stopped' }).machine;
    await catalog.writeApp('q1', 'apply-virtual_services', () =>
      catalog.apply('machines', {
        type: 'change',
        kind: 'update',
        rowid: 1,
        cells: stopped,
        changeId: 4242,
      }),
    );
    expect(catalog.quarantine()).toEqual([
      expect.objectContaining({
        app: 'q1',
        table: 'machines',
        reason: 'reentrant',
        changeId: 4242,
        atMs: expect.any(Number),
      }),
    ]);
    expect(await metrics.sample('catalog_quarantined_updates_total', { reason: 'reentrant' })).toBe(
      1,
    );
    expect(await catalog.stats()).toMatchObject({ quarantined: 1 });
    // every other app keeps routing, from memory; the quarantined one serves its last rows
    expect(catalog.route('q2')).toMatchObject({ kind: 'ok', machine: { id: 'q2-m' } });
    expect(catalog.route('q1')).toMatchObject({ kind: 'ok', machine: { id: 'q1-m' } });
    // corrosion's state reaches q1 through its resync, which releases it
    await agent.client.transaction([
      ["UPDATE machines SET state = 'stopped' WHERE id = 'q1-m'", []],
    ]);
    expect(
      await until(
        'the quarantine released',
        () => catalog.quarantine(),
        (list) => list.length === 0,
      ),
    ).toEqual([]);
    expect(
      await until(
        'q1 without a machine',
        () => catalog.route('q1'),
        (decision) => decision.kind === 'no-machine',
      ),
    ).toMatchObject({ kind: 'no-machine' });
    expect(await metrics.sample('catalog_quarantine_released_total')).toBe(1);
  });

  it('reads again from corrosion an app whose update its lock refused, without waiting for a request', async () => {
    const catalog = await agent.follow({ writeTimeoutMs: 100 });
    expect(catalog.machine('r1-m')?.state).toBe('started');
    let release!: () => void;
    const holding = catalog.writeApp(
      'r1',
      'test-hold',
      () =>
        new Promise<void>((resolve) => {
          release = resolve;
        }),
    );
    await agent.client.transaction([
      ["UPDATE machines SET state = 'stopping' WHERE id = 'r1-m'", []],
    ]);
    // the stream's update times out on the held lock: not its fault, so no quarantine
    const refused = await until(
      'the refused update waiting for its resync',
      () => catalog.stats(),
      (stats) => stats.resyncing.refused === 1,
    );
    expect(refused).toMatchObject({ resyncing: { refused: 1 }, quarantined: 0 });
    release();
    await holding;
    // machine() never loads anything: only the background resync can bring the change
    expect(
      await until(
        'r1-m stopping',
        () => catalog.machine('r1-m')?.state,
        (state) => state === 'stopping',
      ),
    ).toBe('stopping');
    expect(await catalog.stats()).toMatchObject({ resyncing: { refused: 0 } });
  });

  it('holds an update at fault when it throws or re-enters, never when its lock only refused it', () => {
    const lockError = (code: 'LOCK_ERR_REENTRANT' | 'LOCK_ERR_TIMEOUT' | 'LOCK_ERR_QUEUE_FULL') =>
      new LockError(code, code, 'catalog-0', 'apply-machines');
    expect(faultOf(lockError('LOCK_ERR_REENTRANT'))).toBe('reentrant');
    expect(faultOf(lockError('LOCK_ERR_TIMEOUT'))).toBeUndefined();
    expect(faultOf(lockError('LOCK_ERR_QUEUE_FULL'))).toBeUndefined();
    expect(faultOf(new TypeError("Cannot read properties of undefined (reading 'x')"))).toBe(
      'throws',
    );
  });
});
