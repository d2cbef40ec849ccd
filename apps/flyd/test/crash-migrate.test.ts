import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CorrosionClient } from '@fleet/corrosion-client';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FsmEngine } from '../src/fsm/engine.js';
import { defineMigrateAction, type MigrateSteps } from '../src/migrate/migrate.js';
import { call, FlydFixture, hello, runsIdle } from './flyd-fixture.js';
import { machinePids } from './machine-processes.js';

const newId = () => randomBytes(7).toString('hex');

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
    corrosion = new CorrosionClient({
      url: present(source.corrosion.urls.api, 'source.corrosion.urls.api'),
      timeoutMs: 5_000,
    });
    sourceApi = await source.startFlyd();
    targetApi = await target.startFlyd();
  });
  afterAll(async () => {
    await corrosion.close();
    await target.close();
    await source.close();
  });

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
    await runsIdle(sourceApi);
    return { id, volume };
  }

  for (const step of migrateSteps()) {
    it(`finishes a migrate when the source flyd dies right after its ${step} step`, async () => {
      const { id, volume } = await prepare();
      await source.kill();
      const crashing = await source.startFlyd({ FLYD_CRASH_AFTER_STEP: `migrate:${step}` });
      await call(crashing, 'GET', `/v1/machines/${id}/wait?state=started&timeout=15`);
      await runsIdle(crashing);
      const answer = call(crashing, 'POST', `/v1/machines/${id}/migrate`, {
        target_url: targetApi,
        target_host_id: 'dst',
      });
      const stillAlive = answer.then(
        () => new Promise((resolve) => setTimeout(resolve, 15_000, answer)),
      );
      expect(await Promise.race([present(source.flyd, 'source.flyd').exited, stillAlive])).toBe(
        'SIGKILL',
      );
      sourceApi = await source.startFlyd();
      await runsIdle(sourceApi);
      await runsIdle(targetApi);

      const runs = (await call(sourceApi, 'GET', `/v1/machines/${id}/runs`))?.body as unknown as {
        id: string;
        action: string;
        status: string;
        finalized: number;
      }[];
      const migrate = runs.find((run) => run.action === 'migrate');
      expect(migrate).toMatchObject({ status: 'succeeded', finalized: 1 });
      const history = (await call(sourceApi, 'GET', `/v1/runs/${present(migrate, 'migrate').id}`))
        ?.body as {
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
      await until(`corrosion to show ${id} started on dst`, async () => {
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
      });

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
