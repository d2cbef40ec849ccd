import { randomBytes } from 'node:crypto';
import { CorrosionClient } from '@fleet/corrosion-client';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FsmEngine } from '../src/fsm/engine.js';
import { defineMachineActions, type MachineSteps } from '../src/machines/actions.js';
import { call, FlydFixture, hello, runsIdle } from './flyd-fixture.js';
import { machinePids } from './machine-processes.js';

const newId = () => randomBytes(7).toString('hex');
/**
 * Actions whose crash outcome is not "the operation completes": a suspend or resume is a pause of
 * a process, and a flyd restart ends the pause (the machine boots stopped), see flyd.test.ts.
 */
const pauses = new Set(['suspend', 'resume']);

const boundaries = stepBoundaries();

/** Every (action, step) of the machine FSMs, read from their definitions so none is missed. */
function stepBoundaries(): [string, string][] {
  const boundaries: [string, string][] = [];
  const recorder = {
    define: (action: string, definition: { steps: { name: string }[] }) => {
      if (pauses.has(action)) return;
      for (const step of definition.steps) boundaries.push([action, step.name]);
    },
  };
  defineMachineActions(recorder as unknown as FsmEngine, {} as MachineSteps);
  return boundaries;
}

/** The state each operation leaves a machine in, and the state it needs first. */
const operations: Record<string, { needs: 'none' | 'started' | 'stopped'; ends: string }> = {
  create: { needs: 'none', ends: 'started' },
  start: { needs: 'stopped', ends: 'started' },
  stop: { needs: 'started', ends: 'stopped' },
  restart: { needs: 'started', ends: 'started' },
  update: { needs: 'started', ends: 'started' },
  destroy: { needs: 'started', ends: 'destroyed' },
  cordon: { needs: 'started', ends: 'started' },
  uncordon: { needs: 'started', ends: 'started' },
};

function operate(api: string, action: string, id: string): Promise<unknown> {
  switch (action) {
    case 'create':
      return call(api, 'POST', '/v1/machines', { id, app: 'crash', config: hello });
    case 'update':
      return call(api, 'POST', `/v1/machines/${id}`, {
        config: { ...hello, env: { VERSION: newId() } },
      });
    case 'destroy':
      return call(api, 'DELETE', `/v1/machines/${id}?kill=true`);
    default:
      return call(api, 'POST', `/v1/machines/${id}/${action}`);
  }
}

// flyd is killed with SIGKILL right after it commits each step of each machine FSM (through the
// test-only FLYD_CRASH_AFTER_STEP hook), and again right after each step ran but before its
// result was committed (FLYD_CRASH_BEFORE_COMMIT: the step runs a second time after the restart).
// After a restart on the same data directory every run completes with its finalizer called, the
// machine ends in the state its operation was heading for, a process runs it iff it is started,
// its corrosion row says the same, and an update made exactly one new version (the old one
// `replaced`). One corrosion and one data directory serve every case; the flyd that checks one
// case prepares the next.
describe('flyd killed at every FSM step boundary', () => {
  const fixture = new FlydFixture();
  let corrosion: CorrosionClient;
  let api = '';
  const shared = newId(); // the machine the start, stop, restart and update cases reuse

  beforeAll(async () => {
    await fixture.startCorrosion();
    corrosion = new CorrosionClient({
      url: present(fixture.corrosion.urls.api, 'fixture.corrosion.urls.api'),
      timeoutMs: 5_000,
    });
    api = await fixture.startFlyd();
  });
  afterAll(async () => {
    await corrosion.close();
    await fixture.close();
  });

  /** Brings a machine into the state the operation needs, on the current (hook-less) flyd. */
  async function prepare(action: string): Promise<string> {
    const { needs } = present(operations[action], 'operations[action]');
    if (needs === 'none') return newId();
    const id = action === 'destroy' ? newId() : shared;
    const existing = await call(api, 'GET', `/v1/machines/${id}`);
    if (existing?.status === 404)
      await call(api, 'POST', '/v1/machines', { id, app: 'crash', config: hello });
    await call(api, 'POST', `/v1/machines/${id}/start`);
    await call(api, 'GET', `/v1/machines/${id}/wait?state=started&timeout=15`);
    await runsIdle(api);
    if (needs === 'stopped') await call(api, 'POST', `/v1/machines/${id}/stop`);
    return id;
  }

  async function check(id: string, action: string): Promise<void> {
    await runsIdle(api);
    const runs = (await call(api, 'GET', `/v1/machines/${id}/runs`))?.body as unknown as {
      id: string;
      action: string;
      status: string;
      finalized: number;
    }[];
    const crashed = runs.find((run) => run.action === action);
    expect(crashed).toMatchObject({ status: 'succeeded' });
    // Its history holds every step once, whichever flyd ran it.
    const history = (await call(api, 'GET', `/v1/runs/${present(crashed, 'crashed').id}`))
      ?.body as {
      steps: { step: string }[];
    };
    expect(history.steps.map((step) => step.step)).toEqual(
      boundaries.filter(([other]) => other === action).map(([, step]) => step),
    );
    expect(runs.every((run) => run.finalized === 1)).toBe(true);
    const { ends } = present(operations[action], 'operations[action]');
    const machine = (await call(api, 'GET', `/v1/machines/${id}`))?.body;
    expect(machine?.state).toBe(ends);
    if (action === 'cordon' || action === 'uncordon') {
      expect(machine?.cordoned).toBe(action === 'cordon');
    }
    expect(machinePids(id)).toHaveLength(ends === 'started' ? 1 : 0);
    await until(`corrosion to show ${id} ${ends}`, async () => {
      const [row] = await corrosion.queryObjects<{ state: string }>([
        'SELECT state FROM machines WHERE id = ?',
        [id],
      ]);
      return row?.state === ends ? true : undefined;
    });
  }

  type Version = { version: string; state: string };
  const versionsOf = async (id: string) =>
    ((await call(api, 'GET', `/v1/machines/${id}/versions`))?.body ?? []) as unknown as Version[];

  /** An update leaves one new version, the machine's, and every older one `replaced`. */
  async function checkOneNewVersion(id: string, before: Version[]): Promise<void> {
    const after = await versionsOf(id);
    expect(after).toHaveLength(before.length + 1);
    const machine = (await call(api, 'GET', `/v1/machines/${id}`))?.body;
    expect(after[0]).toMatchObject({ version: machine?.instance_id, state: 'started' });
    expect(after.slice(1).every((version) => version.state === 'replaced')).toBe(true);
    expect(after.slice(1).map((version) => version.version)).toEqual(
      before.map((version) => version.version),
    );
  }

  const hooks = [
    ['FLYD_CRASH_AFTER_STEP', 'right after its'],
    ['FLYD_CRASH_BEFORE_COMMIT', 'before the commit of its'],
  ] as const;
  for (const [action, step] of boundaries)
    for (const [hook, moment] of hooks)
      it(`finishes a ${action} when flyd dies ${moment} ${step} step`, async () => {
        await crashCase(action, step, hook);
      }, 60_000);

  async function crashCase(action: string, step: string, hook: string): Promise<void> {
    const id = await prepare(action);
    const versionsBefore = action === 'update' ? await versionsOf(id) : [];
    await fixture.kill();
    const crashing = await fixture.startFlyd({ [hook]: `${action}:${step}` });
    if (present(operations[action], 'operations[action]').needs === 'started')
      await call(crashing, 'GET', `/v1/machines/${id}/wait?state=started&timeout=15`);
    await runsIdle(crashing);
    const answer = operate(crashing, action, id);
    // flyd dies at the hook (create answers before its launch step: the death comes later);
    // a call that answered and left flyd alive for long means the hook never fired.
    const stillAlive = answer.then(
      () => new Promise((resolve) => setTimeout(resolve, 15_000, answer)),
    );
    const outcome = await Promise.race([present(fixture.flyd, 'fixture.flyd').exited, stillAlive]);
    expect(outcome).toBe('SIGKILL');
    api = await fixture.startFlyd();
    await check(id, action);
    if (action === 'update') await checkOneNewVersion(id, versionsBefore);
    // Only the shared machine outlives its case: a machine left started would be started again
    // by every later flyd's boot, and the start:launch hook would fire there.
    if (id !== shared) await call(api, 'DELETE', `/v1/machines/${id}?kill=true`);
  }

  it('counts the runs by action and outcome in its metrics', async () => {
    const id = newId();
    await call(api, 'POST', '/v1/machines', { id, app: 'crash', config: hello, skip_launch: true });
    await runsIdle(api);
    await call(api, 'DELETE', `/v1/machines/${id}`);
    const text = await (await fetch(`${api}/metrics`)).text();
    expect(text).toMatch(/flyd_fsm_runs_total\{[^}]*action="create"[^}]*outcome="succeeded"/);
    expect(text).toContain('flyd_fsm_run_ms');
  });
});
