import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createMachine, FlydFixture, inState } from './flyd-fixture.js';
import { machinePids } from './machine-processes.js';
import { settledIn } from './machine-wait.js';
import { tempDir } from './temp-dirs.js';

// Exits after a moment (long enough for flyd to have recorded the machine started).
const exitsWith = (code: number) => ({
  image: 'hello',
  init: { exec: ['node', '-e', `setTimeout(() => process.exit(${code}), 200)`] },
});

// Exits cleanly on its first two runs and stays up from the third: the count is kept in a file
// outside its root (the root is fresh at every launch).
const twoCleanExits = `const fs = require('node:fs'); const file = process.env.COUNT_FILE;
const runs = fs.existsSync(file) ? Number(fs.readFileSync(file, 'utf8')) : 0;
fs.writeFileSync(file, String(runs + 1));
if (runs < 2) setTimeout(() => process.exit(0), 200); else setInterval(() => {}, 1000);`;

interface ExitEvent {
  type: string;
  request?: { exit_event?: { exit_code: number; restarting?: boolean } };
}

// Fly's restart policies end to end, on real processes that exit by themselves: what flyd does
// next is read from the machine's exit events, its state, its processes and its corrosion row.
describe('what happens after a machine exits', () => {
  const fixture = new FlydFixture();
  let base: string;

  beforeAll(async () => {
    base = await fixture.start();
  });
  const client = () => fixture.corrosionClient;
  afterAll(() => fixture.close());

  const create = (config: Record<string, unknown>) => createMachine(base, 'exits', config);
  const view = async (id: string) =>
    present(await call(base, 'GET', `/v1/machines/${id}`), 'an answer').body;
  /** The machine's exits with `code`, newest first. */
  const exitsOf = async (id: string, code: number) =>
    ((await view(id)).events as ExitEvent[])
      .filter((event) => event.type === 'exit' && event.request?.exit_event?.exit_code === code)
      .map((event) => present(event.request?.exit_event, 'the exit'));
  /**
   * Whether the policy restarts after each exit, newest first, once there are `count` of them:
   * a restart that will not come is read from the exit event (Fly's `restarting`), not inferred
   * from a quiet moment.
   */
  const restartingAfter = async (id: string, code: number, count: number) =>
    (
      await until(
        `${count} exits`,
        () => exitsOf(id, code),
        (seen) => seen.length === count,
        20_000,
      )
    ).map((exit) => exit.restarting);
  const rowState = async (id: string) =>
    (
      await client().queryObjects<{ state: string }>([
        'SELECT state FROM machines WHERE id = ?',
        [id],
      ])
    )[0]?.state;

  it('restarts a clean exit under `always`, until a caller stops it', async () => {
    // The count outlives each run's root; the machine runs as a user of its own, so its folder
    // is open to it.
    const countDir = tempDir('fleet-exits-');
    chmodSync(countDir, 0o777);
    const countFile = join(countDir, 'runs');
    const id = await create({
      image: 'hello',
      init: { exec: ['node', '-e', twoCleanExits] },
      env: { COUNT_FILE: countFile },
      restart: { policy: 'always' },
    });
    expect(await restartingAfter(id, 0, 2)).toEqual([true, true]);
    await settledIn(base, id, 'started'); // its third run, which stays up
    await until("the third run's process", async () =>
      machinePids(id).length > 0 ? true : undefined,
    );
    const stop = await call(base, 'POST', `/v1/machines/${id}/stop`, { timeout: 5 });
    expect(stop?.status).toBe(200);
    expect((await view(id)).state).toBe('stopped');
    expect(machinePids(id)).toEqual([]);
  });

  it('leaves a machine stopped under `no`, even after a failure', async () => {
    const id = await create({ ...exitsWith(4), restart: { policy: 'no' } });
    expect(await restartingAfter(id, 4, 1)).toEqual([false]);
    expect((await view(id)).state).toBe('stopped');
    expect(await rowState(id)).toBe('stopped');
    expect(machinePids(id)).toEqual([]);
  });

  it('stops retrying a failure under `on-failure` after max_retries', async () => {
    const id = await create({ ...exitsWith(5), restart: { policy: 'on-failure', max_retries: 1 } });
    // The first run, restarted; its one retry, not.
    expect(await restartingAfter(id, 5, 2)).toEqual([false, true]);
    expect((await view(id)).state).toBe('stopped');
    expect(machinePids(id)).toEqual([]);
  });

  it("starts counting retries again after a caller's start", async () => {
    const id = await create({ ...exitsWith(6), restart: { policy: 'on-failure', max_retries: 1 } });
    expect(await restartingAfter(id, 6, 2)).toEqual([false, true]);
    await settledIn(base, id, 'stopped');
    expect((await call(base, 'POST', `/v1/machines/${id}/start`))?.status).toBe(200);
    // The caller's run and, its count reset, one retry again.
    expect(await restartingAfter(id, 6, 4)).toEqual([false, true, false, true]);
    expect((await view(id)).state).toBe('stopped');
  });

  it('does not restart a clean exit under `on-failure`', async () => {
    const id = await create({ ...exitsWith(0), restart: { policy: 'on-failure' } });
    expect(await restartingAfter(id, 0, 1)).toEqual([false]);
    expect((await view(id)).state).toBe('stopped');
  });

  it('destroys an auto_destroy machine once it exits, whatever its restart policy', async () => {
    const id = await create({ ...exitsWith(0), auto_destroy: true, restart: { policy: 'always' } });
    await inState(base, id, 'destroyed');
    expect(machinePids(id)).toEqual([]);
    await until('its row destroyed', async () =>
      (await rowState(id)) === 'destroyed' ? true : undefined,
    );
    expect(
      await client().queryObjects(['SELECT * FROM services WHERE machine_id = ?', [id]]),
    ).toEqual([]);
    const listed = present(await call(base, 'GET', '/v1/machines?app=exits'), 'an answer')
      .body as unknown as {
      id: string;
    }[];
    expect(listed.map((machine) => machine.id)).not.toContain(id);
  });
});
