import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CorrosionClient } from '@fleet/corrosion-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FsmEngine } from '../src/fsm/engine.js';
import { defineMachineActions, type MachineSteps } from '../src/machine-actions.js';
import { defineMigrateAction, type MigrateSteps } from '../src/migrate.js';
import { call, eventually, FlydFixture, hello } from './flyd-fixture.js';
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
    corrosion = new CorrosionClient({ url: fixture.corrosion.urls.api!, timeoutMs: 5_000 });
    api = await fixture.startFlyd();
  });
  afterAll(async () => {
    await corrosion.close();
    await fixture.close();
  });

  /** Brings a machine into the state the operation needs, on the current (hook-less) flyd. */
  async function prepare(action: string): Promise<string> {
    const { needs } = operations[action]!;
    if (needs === 'none') return newId();
    const id = action === 'destroy' ? newId() : shared;
    const existing = await call(api, 'GET', `/v1/machines/${id}`);
    if (existing?.status === 404)
      await call(api, 'POST', '/v1/machines', { id, app: 'crash', config: hello });
    await call(api, 'POST', `/v1/machines/${id}/start`);
    await call(api, 'GET', `/v1/machines/${id}/wait?state=started&timeout=15`);
    await idle(api);
    if (needs === 'stopped') await call(api, 'POST', `/v1/machines/${id}/stop`);
    return id;
  }

  /** Waits until no run is active on that flyd (`wait` answers before its run has ended). */
  const idle = (base: string) =>
    eventually(async () => {
      const active = (await call(base, 'GET', '/v1/runs'))?.body as unknown as unknown[];
      return active?.length === 0 ? true : undefined;
    }, 'the runs to end');

  async function check(id: string, action: string): Promise<void> {
    await idle(api);
    const runs = (await call(api, 'GET', `/v1/machines/${id}/runs`))?.body as unknown as {
      id: string;
      action: string;
      status: string;
      finalized: number;
    }[];
    const crashed = runs.find((run) => run.action === action);
    expect(crashed).toMatchObject({ status: 'succeeded' });
    // Its history holds every step once, whichever flyd ran it.
    const history = (await call(api, 'GET', `/v1/runs/${crashed!.id}`))?.body as {
      steps: { step: string }[];
    };
    expect(history.steps.map((step) => step.step)).toEqual(
      boundaries.filter(([other]) => other === action).map(([, step]) => step),
    );
    expect(runs.every((run) => run.finalized === 1)).toBe(true);
    const { ends } = operations[action]!;
    const machine = (await call(api, 'GET', `/v1/machines/${id}`))?.body;
    expect(machine?.state).toBe(ends);
    if (action === 'cordon' || action === 'uncordon') {
      expect(machine?.cordoned).toBe(action === 'cordon');
    }
    expect(machinePids(id)).toHaveLength(ends === 'started' ? 1 : 0);
    await eventually(async () => {
      const [row] = await corrosion.queryObjects<{ state: string }>([
        'SELECT state FROM machines WHERE id = ?',
        [id],
      ]);
      return row?.state === ends ? true : undefined;
    }, `corrosion to show ${id} ${ends}`);
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
    if (operations[action]!.needs === 'started')
      await call(crashing, 'GET', `/v1/machines/${id}/wait?state=started&timeout=15`);
    await idle(crashing);
    const answer = operate(crashing, action, id);
    // flyd dies at the hook (create answers before its launch step: the death comes later);
    // a call that answered and left flyd alive for long means the hook never fired.
    const stillAlive = answer.then(
      () => new Promise((resolve) => setTimeout(resolve, 15_000, answer)),
    );
    const outcome = await Promise.race([fixture.flyd!.exited, stillAlive]);
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
    await idle(api);
    await call(api, 'DELETE', `/v1/machines/${id}`);
    const text = await (await fetch(`${api}/metrics`)).text();
    expect(text).toMatch(/flyd_fsm_runs_total\{[^}]*action="create"[^}]*outcome="succeeded"/);
    expect(text).toContain('flyd_fsm_run_ms');
  });
});

// kill -9 flyd at different moments of a create and of a stop: after a restart on the same data
// directory every unfinished run resumes and completes, the machine ends in the state the
// operation was heading for, and exactly one process (or none) runs it.
describe('flyd killed mid-operation', () => {
  const fixture = new FlydFixture();
  beforeAll(() => fixture.startCorrosion());
  afterAll(() => fixture.close());

  for (const delayMs of [0, 5, 15, 40]) {
    it(`finishes a create and a stop interrupted after ${delayMs} ms`, async () => {
      // Whatever way the case ends (early, or failing), its flyd is stopped: the next case starts
      // its own on the same data directory, which a live one would hold.
      try {
        await interruptCreateAndStop(delayMs);
      } finally {
        await fixture.stopFlyd();
      }
    }, 60_000);
  }

  async function interruptCreateAndStop(delayMs: number): Promise<void> {
    const id = newId();
    let api = await fixture.startFlyd();
    void call(api, 'POST', '/v1/machines', { id, app: 'crash', config: hello });
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    await fixture.kill();
    api = await fixture.startFlyd();
    const created = await call(api, 'GET', `/v1/machines/${id}/wait?state=started&timeout=15`);
    if (created?.status === 404) return; // killed before the machine was recorded: nothing to finish
    expect(created?.status).toBe(200);
    expect(machinePids(id)).toHaveLength(1);

    void call(api, 'POST', `/v1/machines/${id}/stop`);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    await fixture.kill();
    api = await fixture.startFlyd();
    const runs = (await call(api, 'GET', `/v1/machines/${id}/runs`))?.body as unknown as {
      status: string;
    }[];
    await eventually(async () => {
      const active = (await call(api, 'GET', '/v1/runs'))?.body as unknown as unknown[];
      return active.length === 0 ? true : undefined;
    }, 'the resumed runs to end');
    expect(runs.every((run) => run.status !== 'failed')).toBe(true);
    const machine = (await call(api, 'GET', `/v1/machines/${id}`))?.body;
    expect(['started', 'stopped']).toContain(machine?.state);
    expect(machinePids(id)).toHaveLength(machine?.state === 'started' ? 1 : 0);
    await call(api, 'DELETE', `/v1/machines/${id}?kill=true`);
  }
});

/** The steps of the migrate FSM, read from its definition so none is missed. */
function migrateSteps(): string[] {
  const steps: string[] = [];
  const recorder = {
    define: (_action: string, definition: { steps: { name: string }[] }) => {
      for (const step of definition.steps) steps.push(step.name);
    },
  };
  defineMigrateAction(recorder as unknown as FsmEngine, {} as MigrateSteps);
  return steps;
}

// The source flyd of a migrate is killed with SIGKILL right after each step of the migrate FSM.
// After a restart on the same data directory the run completes: the machine (same id) runs on
// the target worker with its volume's file, exactly one process runs it, corrosion's machine and
// volume rows name the target, and nothing of the machine or its volume is left on the source.
// Two flyds ("src" and "dst", one corrosion) play two workers of one region.
describe('a migrate whose source flyd dies at every step boundary', () => {
  const source = new FlydFixture(['--host-id', 'src', '--region', 'ams']);
  const target = new FlydFixture(['--host-id', 'dst', '--region', 'ams']);
  let corrosion: CorrosionClient;
  let sourceApi = '';
  let targetApi = '';

  beforeAll(async () => {
    await source.startCorrosion();
    target.shareCorrosion(source);
    corrosion = new CorrosionClient({ url: source.corrosion.urls.api!, timeoutMs: 5_000 });
    sourceApi = await source.startFlyd();
    targetApi = await target.startFlyd();
  });
  afterAll(async () => {
    await corrosion.close();
    await target.close();
    await source.close();
  });

  const idle = (base: string) =>
    eventually(async () => {
      const active = (await call(base, 'GET', '/v1/runs'))?.body as unknown as unknown[];
      return active?.length === 0 ? true : undefined;
    }, 'the runs to end');

  /** A started machine on the source that mounts a volume holding one file. */
  async function prepare(): Promise<{ id: string; volume: string }> {
    const volume = (await call(sourceApi, 'POST', '/v1/volumes', { app: 'crash', name: 'data' }))
      ?.body.id as string;
    const id = newId();
    const config = { ...hello, mounts: [{ volume, path: '/data' }] };
    await call(sourceApi, 'POST', '/v1/machines', { id, app: 'crash', config });
    await call(sourceApi, 'GET', `/v1/machines/${id}/wait?state=started&timeout=15`);
    const written = await call(sourceApi, 'POST', `/v1/machines/${id}/exec`, {
      cmd: `echo ${id} > "$HOME/data/who"`,
    });
    expect(written?.body).toMatchObject({ exit_code: 0 });
    await idle(sourceApi);
    return { id, volume };
  }

  for (const step of migrateSteps()) {
    it(`finishes a migrate when the source flyd dies right after its ${step} step`, async () => {
      const { id, volume } = await prepare();
      await source.kill();
      const crashing = await source.startFlyd({ FLYD_CRASH_AFTER_STEP: `migrate:${step}` });
      await call(crashing, 'GET', `/v1/machines/${id}/wait?state=started&timeout=15`);
      await idle(crashing);
      const answer = call(crashing, 'POST', `/v1/machines/${id}/migrate`, {
        target_url: targetApi,
        target_host_id: 'dst',
      });
      const stillAlive = answer.then(
        () => new Promise((resolve) => setTimeout(resolve, 15_000, answer)),
      );
      expect(await Promise.race([source.flyd!.exited, stillAlive])).toBe('SIGKILL');
      sourceApi = await source.startFlyd();
      await idle(sourceApi);
      await idle(targetApi);

      const runs = (await call(sourceApi, 'GET', `/v1/machines/${id}/runs`))?.body as unknown as {
        id: string;
        action: string;
        status: string;
        finalized: number;
      }[];
      const migrate = runs.find((run) => run.action === 'migrate');
      expect(migrate).toMatchObject({ status: 'succeeded', finalized: 1 });
      const history = (await call(sourceApi, 'GET', `/v1/runs/${migrate!.id}`))?.body as {
        steps: { step: string }[];
      };
      expect(history.steps.map((each) => each.step)).toEqual(migrateSteps());

      // On the target: the machine, started, with its volume's file.
      const moved = (
        await call(targetApi, 'GET', `/v1/machines/${id}/wait?state=started&timeout=15`)
      )?.status;
      expect(moved).toBe(200);
      const read = await call(targetApi, 'POST', `/v1/machines/${id}/exec`, {
        cmd: 'cat "$HOME/data/who"',
      });
      expect(read?.body).toMatchObject({ exit_code: 0, stdout: `${id}\n` });
      expect((await call(targetApi, 'GET', `/v1/volumes/${volume}`))?.body).toMatchObject({
        attached_machine_id: id,
      });
      expect(machinePids(id)).toHaveLength(1);
      // On the source: nothing.
      expect((await call(sourceApi, 'GET', `/v1/machines/${id}`))?.status).toBe(404);
      expect((await call(sourceApi, 'GET', `/v1/volumes/${volume}`))?.status).toBe(404);
      expect(existsSync(join(source.dir, 'flyd', 'volumes', volume))).toBe(false);
      expect(existsSync(join(source.dir, 'flyd', 'machines', id))).toBe(false);
      // In corrosion: the target's rows.
      await eventually(async () => {
        const [machine] = await corrosion.queryObjects<{ host_id: string; state: string }>([
          'SELECT host_id, state FROM machines WHERE id = ?',
          [id],
        ]);
        const [row] = await corrosion.queryObjects<{ host_id: string }>([
          'SELECT host_id FROM volumes WHERE id = ?',
          [volume],
        ]);
        return machine?.host_id === 'dst' && machine.state === 'started' && row?.host_id === 'dst'
          ? true
          : undefined;
      }, `corrosion to show ${id} started on dst`);

      await call(targetApi, 'DELETE', `/v1/machines/${id}?kill=true`);
      await call(targetApi, 'DELETE', `/v1/volumes/${volume}`);
    }, 60_000);
  }

  it('leaves the machine running where it was when the target cannot be reached', async () => {
    const { id, volume } = await prepare();
    // Port 1 on loopback refuses connections: send-volume fails after its retries.
    const refused = await call(sourceApi, 'POST', `/v1/machines/${id}/migrate`, {
      target_url: 'http://127.0.0.1:1',
      target_host_id: 'dst',
    });
    expect(refused).toMatchObject({ status: 500, body: { code: 'FLYD_ERR_FAILED' } });
    expect(
      (await call(sourceApi, 'GET', `/v1/machines/${id}/wait?state=started&timeout=15`))?.status,
    ).toBe(200);
    const read = await call(sourceApi, 'POST', `/v1/machines/${id}/exec`, {
      cmd: 'cat "$HOME/data/who"',
    });
    expect(read?.body).toMatchObject({ stdout: `${id}\n` });
    const [row] = await corrosion.queryObjects<{ host_id: string }>([
      'SELECT host_id FROM volumes WHERE id = ?',
      [volume],
    ]);
    expect(row?.host_id).toBe('src');
    const same = await call(sourceApi, 'POST', `/v1/machines/${id}/migrate`, {
      target_url: targetApi,
      target_host_id: 'src',
    });
    expect(same).toMatchObject({ status: 412, body: { code: 'FLYD_ERR_MIGRATE' } });
    await call(sourceApi, 'DELETE', `/v1/machines/${id}?kill=true`);
    await call(sourceApi, 'DELETE', `/v1/volumes/${volume}`);
  }, 60_000);
});
