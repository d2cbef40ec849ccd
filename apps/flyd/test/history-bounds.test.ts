import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { present } from '@fleet/service/invariant';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db.js';
import { MachineStore } from '../src/machines/machine-store.js';
import { engineAt, freshDbPath } from './engine-helpers.js';

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

// flyd.db keeps a bounded history per machine: a machine that runs operations or crash-loops
// forever does not grow fsm_runs, fsm_steps or machine_events without end.
describe('history per machine', () => {
  it('keeps the newest finished runs of each machine, with their steps', async () => {
    const path = freshDbPath();
    const { db, engine } = engineAt(path, { historyMax: 5 });
    closers.push(() => {
      db.close();
      rmSync(dirname(path), { recursive: true, force: true });
    });
    engine.define<null>('tick', {
      steps: [
        { name: 'one', run: async () => 1 },
        { name: 'two', run: async () => 2 },
      ],
    });
    for (let i = 0; i < 30; i++) await engine.start('m1', 'tick', null).done;
    await engine.start('m2', 'tick', null).done;
    const runs = (machine: string) =>
      (
        db.prepare('SELECT count(*) AS n FROM fsm_runs WHERE machine_id = ?').get(machine) as {
          n: number;
        }
      ).n;
    // The last run's finalizer (which prunes) may end just after its `done`.
    await expect.poll(() => runs('m1')).toBe(5);
    await expect.poll(() => runs('m2')).toBe(1);
    const steps = db.prepare('SELECT count(*) AS n FROM fsm_steps').get() as { n: number };
    expect(steps.n).toBe(6 * 2);
    const orphans = db
      .prepare('SELECT count(*) AS n FROM fsm_steps WHERE run_id NOT IN (SELECT id FROM fsm_runs)')
      .get() as { n: number };
    expect(orphans.n).toBe(0);
  });

  it('keeps the newest events of a machine', () => {
    const path = freshDbPath();
    const db = openDatabase(path);
    closers.push(() => {
      db.close();
      rmSync(dirname(path), { recursive: true, force: true });
    });
    const store = new MachineStore(db, 20);
    for (let i = 0; i < 150; i++) {
      store.addEvent('m1', { type: 'exit', status: `crash ${i}`, source: 'flyd' });
    }
    store.addEvent('m2', { type: 'launch', status: 'created', source: 'user' });
    const events = store.events('m1', 1_000);
    expect(events).toHaveLength(20);
    expect(present(events[0], 'events[0]').status).toBe('crash 149');
    expect(present(events.at(-1), 'events.at(-1)').status).toBe('crash 130');
    expect(store.events('m2', 1_000)).toHaveLength(1);
  });
});
