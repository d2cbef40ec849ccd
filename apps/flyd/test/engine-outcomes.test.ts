import { present } from '@fleet/service/invariant';
import { describe, expect, it } from 'vitest';
import {
  AbortStep,
  type FsmEngine,
  type RunOutcome,
  UnrecoverableError,
} from '../src/fsm/engine.js';
import { engineAt, freshDbPath } from './engine-helpers.js';

// Child runs, the three error kinds, and finalizers (also one a crash skipped), on real SQLite.
describe('FsmEngine outcomes', () => {
  it('runs a child from a step on the same machine and shows its outcome in the parent history', async () => {
    const { engine } = engineAt(freshDbPath());
    engine.define('child', { steps: [{ name: 'only', run: () => 'child-result' }] });
    engine.define('parent', {
      steps: [
        {
          name: 'spawn',
          run: async ({ machineId, startChild }) =>
            (await startChild(machineId, 'child', {}).done).only,
        },
        { name: 'after', run: ({ results }) => `saw ${results.spawn}` },
      ],
    });
    const parent = engine.start('m1', 'parent', {});
    expect(await parent.done).toEqual({ spawn: 'child-result', after: 'saw child-result' });
    const history = present(engine.run(parent.id), 'engine.run(parent.id)');
    expect(history.steps.map((step) => step.step)).toEqual(['spawn', 'after']);
    expect(history.steps[0]?.started_at).toBeTruthy();
    expect(history.children).toMatchObject([
      { action: 'child', status: 'succeeded', parent_id: parent.id },
    ]);
  });

  it('lets a parent go on without waiting for its child', async () => {
    const { engine } = engineAt(freshDbPath());
    let release!: () => void;
    engine.define('slow', {
      steps: [{ name: 'wait', run: () => new Promise<void>((resolve) => (release = resolve)) }],
    });
    let childId = '';
    engine.define('parent', {
      steps: [
        { name: 'spawn', run: ({ startChild }) => (childId = startChild('m2', 'slow', {}).id) },
      ],
    });
    await engine.start('m1', 'parent', {}).done;
    expect(engine.active()).toMatchObject([{ id: childId, status: 'running' }]);
    release();
  });

  it('gives a parent step that runs again after a crash the child its first attempt started', async () => {
    const path = freshDbPath();
    const define = (engine: FsmEngine, childStep: () => unknown) => {
      engine.define('child', { steps: [{ name: 'only', run: childStep }] });
      engine.define('parent', {
        steps: [
          {
            name: 'spawn',
            run: async ({ startChild }) => {
              const child = startChild('m1', 'child', {});
              return { id: child.id, result: (await child.done).only };
            },
          },
        ],
      });
    };
    const first = engineAt(path);
    define(first.engine, () => new Promise(() => undefined)); // the child never ends: flyd dies
    const parent = first.engine.start('m1', 'parent', {});
    await expect.poll(() => first.engine.active().length).toBe(2);
    first.db.close();

    const second = engineAt(path);
    define(second.engine, () => 'done');
    const resumed = present(
      second.engine.resumeAll().find((run) => run.id === parent.id),
      'second.engine.resumeAll().find((run) => run.id === parent...',
    );
    const { spawn } = (await resumed.done) as { spawn: { id: string; result: string } };
    const history = present(second.engine.run(parent.id), 'second.engine.run(parent.id)');
    expect(history.children).toHaveLength(1);
    expect(history.children[0]).toMatchObject({ id: spawn.id, status: 'succeeded' });
    expect(spawn.result).toBe('done');
  });

  it('ends a run on an unrecoverable error at once, distinct from aborted and failed, and finalizes each', async () => {
    const { engine } = engineAt(freshDbPath(), {
      retry: { retriesMax: 2, delayMs: 1, delayMsMax: 1 },
    });
    const outcomes: string[] = [];
    const finalizer = (_: unknown, outcome: RunOutcome) => {
      outcomes.push(`${outcome.status}@${outcome.step}:${outcome.error?.message ?? ''}`);
    };
    let calls = 0;
    const throwing = (error: () => Error) => ({
      steps: [
        {
          name: 'go',
          run: () => {
            calls++;
            throw error();
          },
        },
      ],
      finalizer,
    });
    engine.define(
      'lost',
      throwing(() => new UnrecoverableError('disk gone')),
    );
    engine.define(
      'bad',
      throwing(() => new AbortStep('bad image')),
    );
    engine.define(
      'flaky',
      throwing(() => new Error('timeout')),
    );
    engine.define('fine', { steps: [{ name: 'go', run: () => 1 }], finalizer });
    await expect(engine.start('a', 'lost', {}).done).rejects.toMatchObject({
      message: 'disk gone',
      code: 'FLYD_ERR_UNRECOVERABLE',
    });
    expect(calls).toBe(1);
    await expect(engine.start('b', 'bad', {}).done).rejects.toThrow('bad image');
    await expect(engine.start('c', 'flaky', {}).done).rejects.toThrow('timeout');
    expect(calls).toBe(5);
    await engine.start('d', 'fine', {}).done;
    expect(outcomes).toEqual([
      'unrecoverable@go:disk gone',
      'aborted@go:bad image',
      'failed@go:timeout',
      'succeeded@go:',
    ]);
    expect(engine.history('a')[0]).toMatchObject({ status: 'unrecoverable', finalized: 1 });
  });

  it('calls at boot the finalizer of a run that ended just before a crash', async () => {
    const path = freshDbPath();
    const first = engineAt(path);
    first.engine.define('x', { steps: [{ name: 'go', run: () => 1 }] });
    const run = first.engine.start('m1', 'x', {});
    await run.done;
    first.db.prepare('UPDATE fsm_runs SET finalized = 0 WHERE id = ?').run(run.id); // died before finalizing
    first.db.close();

    const second = engineAt(path);
    const seen: string[] = [];
    second.engine.define('x', {
      steps: [{ name: 'go', run: () => 1 }],
      finalizer: ({ runId }, outcome) => {
        seen.push(`${runId}:${outcome.status}`);
      },
    });
    second.engine.resumeAll();
    await expect.poll(() => seen).toEqual([`${run.id}:succeeded`]);
    expect(second.engine.history('m1')[0]).toMatchObject({ finalized: 1 });
  });
});
