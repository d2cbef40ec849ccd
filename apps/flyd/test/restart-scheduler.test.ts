import { until } from '@fleet/service/vitest-until';
import type { Database as Db } from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { FsmEngine } from '../src/fsm/engine.js';
import { MachineStore } from '../src/machines/machine-store.js';
import { RestartScheduler } from '../src/machines/restarts.js';
import { engineAt, freshDbPath, gate } from './engine-helpers.js';

/** One timer turn: the scheduler's timer (delay 0, created before) fires first. */
const afterTimers = () => new Promise((resolve) => setTimeout(resolve, 5));

// The policy's restart (or auto-destroy) after a process exits, on a real engine and store: the
// run that launched the process may still hold the machine when its backoff runs out (a start
// waiting for its row to reach corrosion on a loaded host). It used to be refused as a conflict
// and lost, leaving a machine that should run stopped for good.
describe('the restart policy when a run still holds the machine', () => {
  let db: Db | undefined;
  afterEach(() => db?.close());

  function setup() {
    const opened = engineAt(freshDbPath());
    db = opened.db;
    const engine: FsmEngine = opened.engine;
    const store = new MachineStore(opened.db);
    const now = new Date().toISOString();
    store.insert({
      ...{ id: 'm1', app: 'a', name: 'm1', region: 'ams', instance_id: 'v1', state: 'stopped' },
      ...{ config: { image: 'hello' }, image_ref: 'hello', port: null, ip: null, pid: null },
      ...{ stop_reason: 'exited', cordoned: false, created_at: now, updated_at: now },
    });
    const held = gate();
    const made: string[] = [];
    engine.define('hold', { steps: [{ name: 'wait', run: () => held.promise }] });
    for (const action of ['start', 'destroy'])
      engine.define(action, { steps: [{ name: 'only', run: () => void made.push(action) }] });
    const scheduler = new RestartScheduler(store, engine, (id, action, request) =>
      engine.start(id, action, request),
    );
    const hold = engine.start('m1', 'hold', {});
    return { engine, scheduler, held, hold, made };
  }

  it('restarts once the run that held the machine ends', async () => {
    const { scheduler, held, hold, made } = setup();
    scheduler.follow('m1', { action: 'restart', delayMs: 0 }, 0);
    await afterTimers(); // the backoff ran out while 'hold' held the machine
    expect(made).toEqual([]);
    held.open();
    await hold.done;
    await until('the restart', () => made.length > 0);
    expect(made).toEqual(['start']);
    expect(scheduler.count('m1')).toBe(1);
  });

  it('auto-destroys once the run that held the machine ends', async () => {
    const { scheduler, held, hold, made } = setup();
    scheduler.follow('m1', { action: 'destroy' }, 0);
    held.open();
    await hold.done;
    await until('the destroy', () => made.length > 0);
    expect(made).toEqual(['destroy']);
  });

  it("drops the due restart when a caller's stop cancels it meanwhile", async () => {
    const { engine, scheduler, held, hold, made } = setup();
    scheduler.follow('m1', { action: 'restart', delayMs: 0 }, 0);
    await afterTimers();
    scheduler.cancel('m1');
    held.open();
    await hold.done;
    await engine.settled('m1');
    await afterTimers(); // the scheduler's continuation after the run settled has run
    expect(made).toEqual([]);
  });
});
