import { present } from '@fleet/service/invariant';
import { describe, expect, it } from 'vitest';
import { QueueFullError, RunConflictError } from '../src/fsm/engine.js';
import { engineAt, freshDbPath, gate } from './engine-helpers.js';

function defineHold(
  engine: ReturnType<typeof engineAt>['engine'],
  log: string[],
  held: Promise<void>,
) {
  engine.define<{ n: number }>('hold', {
    steps: [
      {
        name: 'work',
        run: async ({ request }) => {
          log.push(`start:${request.n}`);
          await held;
          log.push(`end:${request.n}`);
          return request.n;
        },
      },
    ],
  });
}

// Queues, run-after and delayed starts, on a real SQLite file, including across a "restart".
describe('FsmEngine scheduling', () => {
  it('queues a second run for a busy machine when asked, in order, and refuses past the bound', async () => {
    const log: string[] = [];
    const held = gate();
    const { engine } = engineAt(freshDbPath(), { queueLengthMax: 2 });
    defineHold(engine, log, held.promise);
    const first = engine.start('m1', 'hold', { n: 1 });
    expect(() => engine.start('m1', 'hold', { n: 9 })).toThrow(
      expect.objectContaining({ code: 'FLYD_ERR_CONFLICT' }),
    );
    expect(() => engine.start('m1', 'hold', { n: 9 })).toThrow(RunConflictError);
    const second = engine.start('m1', 'hold', { n: 2 }, { queue: true });
    const third = engine.start('m1', 'hold', { n: 3 }, { queue: true });
    expect(() => engine.start('m1', 'hold', { n: 4 }, { queue: true })).toThrow(QueueFullError);
    expect(() => engine.start('m1', 'hold', { n: 4 }, { queue: true })).toThrow(
      expect.objectContaining({ code: 'FLYD_ERR_QUEUE_FULL' }),
    );
    expect(engine.active().map((run) => run.status)).toEqual(['running', 'pending', 'pending']);
    engine.start('m2', 'hold', { n: 5 }, { queue: true }); // another machine is not held up
    held.open();
    await Promise.all([first.done, second.done, third.done]);
    expect(log.filter((line) => !line.endsWith(':5'))).toEqual([
      'start:1',
      'end:1',
      'start:2',
      'end:2',
      'start:3',
      'end:3',
    ]);
  });

  it('starts a run-after run only once its predecessor finished, even on another machine', async () => {
    const log: string[] = [];
    const held = gate();
    const { engine } = engineAt(freshDbPath());
    defineHold(engine, log, held.promise);
    const first = engine.start('m1', 'hold', { n: 1 });
    const after = engine.start('m2', 'hold', { n: 2 }, { runAfter: first.id });
    expect(engine.active().find((run) => run.id === after.id)?.status).toBe('pending');
    held.open();
    await after.done;
    expect(log).toEqual(['start:1', 'end:1', 'start:2', 'end:2']);
  });

  it('keeps a delayed start across a restart and starts it no earlier than asked', async () => {
    const path = freshDbPath();
    const log: string[] = [];
    const before = engineAt(path);
    defineHold(before.engine, log, Promise.resolve());
    const startAt = new Date(Date.now() + 300);
    const run = before.engine.start('m1', 'hold', { n: 1 }, { startAt });
    before.engine.close();
    before.db.close(); // flyd dies with the run still waiting

    const after = engineAt(path);
    defineHold(after.engine, log, Promise.resolve());
    const [resumed] = after.engine.resumeAll();
    expect(resumed?.id).toBe(run.id);
    expect(log).toEqual([]);
    await present(resumed, 'resumed').done;
    expect(Date.now()).toBeGreaterThanOrEqual(startAt.getTime());
    expect(log).toEqual(['start:1', 'end:1']);
    expect(after.engine.run(run.id)).toMatchObject({
      status: 'succeeded',
      start_at: startAt.toISOString(),
    });
  });
});
