import { createLogger } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db.js';
import { AbortStep, FsmEngine, RunConflictError } from '../src/fsm/engine.js';
import { freshDbPath } from './engine-helpers.js';

const logger = createLogger('test');
logger.level = 'silent';

function engineOn(path: string, log: string[], gate?: Promise<void>) {
  const db = openDatabase(path);
  const engine = new FsmEngine(db, logger);
  engine.define<{ n: number }>('demo', {
    steps: [
      { name: 'one', run: ({ request }) => log.push(`one:${request.n}`) && request.n + 1 },
      {
        name: 'two',
        run: async ({ results }) => {
          log.push('two');
          await gate;
          return (results.one as number) * 10;
        },
      },
      { name: 'three', run: ({ results }) => log.push(`three:${results.two}`) },
    ],
  });
  return { db, engine };
}

// The FSM engine persists each step's result and resumes unfinished runs after a restart.
describe('FsmEngine', () => {
  it('runs steps in order, persisting each result', async () => {
    const log: string[] = [];
    const { engine, db } = engineOn(freshDbPath(), log);
    const run = engine.start('m1', 'demo', { n: 1 });
    expect(run.id).toMatch(/^[0-9A-Z]{26}$/);
    await run.done;
    expect(log).toEqual(['one:1', 'two', 'three:20']);
    const steps = db
      .prepare('SELECT step, result FROM fsm_steps WHERE run_id = ? ORDER BY completed_at')
      .all(run.id);
    expect(steps).toHaveLength(3);
    expect(engine.history('m1')[0]).toMatchObject({ status: 'succeeded', action: 'demo' });
  });

  it('allows one active run per machine', async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const { engine } = engineOn(freshDbPath(), [], gate);
    const run = engine.start('m1', 'demo', { n: 1 });
    await run.reached('one');
    expect(() => engine.start('m1', 'demo', { n: 2 })).toThrow(RunConflictError);
    expect(engine.active()).toMatchObject([{ machine_id: 'm1', current_step: 'two' }]);
    open();
    await run.done;
    await engine.start('m1', 'demo', { n: 3 }).done;
  });

  // A crash between steps: a new engine on the same file continues after the last completed step.
  it('resumes an unfinished run after the last completed step', async () => {
    const path = freshDbPath();
    const first: string[] = [];
    const { engine, db } = engineOn(path, first, new Promise(() => undefined)); // step two never ends
    const run = engine.start('m1', 'demo', { n: 4 });
    await run.reached('one');
    db.close(); // the process "dies" here, with step two in flight

    const second: string[] = [];
    const restarted = engineOn(path, second);
    const [resumed] = restarted.engine.resumeAll();
    expect(resumed?.id).toBe(run.id);
    await present(resumed, 'resumed').done;
    expect(second).toEqual(['two', 'three:50']);
    expect(restarted.engine.history('m1')[0]).toMatchObject({ status: 'succeeded' });
  });

  it('records the failing step and calls the failure callback', async () => {
    const db = openDatabase(freshDbPath());
    const engine = new FsmEngine(db, logger);
    const failures: string[] = [];
    engine.define('broken', {
      steps: [
        {
          name: 'explode',
          run: () => {
            throw new Error('boom');
          },
        },
      ],
      onFailure: (_context, error, step) => {
        failures.push(`${step}:${error.message}`);
      },
    });
    await expect(engine.start('m1', 'broken', {}).done).rejects.toThrow('boom');
    expect(failures).toEqual(['explode:boom']);
    expect(engine.history('m1')[0]).toMatchObject({
      status: 'failed',
      error: 'boom',
      current_step: 'explode',
    });
    expect(engine.isBusy('m1')).toBe(false);
  });

  it('retries a failing step with backoff and keeps the retry count on the run', async () => {
    const db = openDatabase(freshDbPath());
    const engine = new FsmEngine(db, logger, {
      retry: { retriesMax: 3, delayMs: 5, delayMsMax: 20 },
    });
    let calls = 0;
    engine.define('flaky', {
      steps: [
        {
          name: 'flaky',
          run: () => {
            calls++;
            if (calls < 3) throw new Error(`try ${calls}`);
            return 'ok';
          },
        },
      ],
    });
    expect(await engine.start('m1', 'flaky', {}).done).toEqual({ flaky: 'ok' });
    expect(engine.history('m1')[0]).toMatchObject({
      status: 'succeeded',
      retries: 2,
      error: 'try 2',
    });
  });

  it('never retries an AbortStep and marks the run aborted', async () => {
    const db = openDatabase(freshDbPath());
    const engine = new FsmEngine(db, logger, {
      retry: { retriesMax: 5, delayMs: 5, delayMsMax: 20 },
    });
    let calls = 0;
    engine.define('bad', {
      steps: [
        {
          name: 'validate',
          run: () => {
            calls++;
            throw new AbortStep('no such image');
          },
        },
      ],
    });
    await expect(engine.start('m1', 'bad', {}).done).rejects.toThrow('no such image');
    expect(calls).toBe(1);
    expect(engine.history('m1')[0]).toMatchObject({ status: 'aborted', retries: 0 });
  });
});
