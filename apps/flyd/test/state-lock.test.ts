import { join } from 'node:path';
import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  call,
  createMachine,
  expectRefusedBeside,
  FlydFixture,
  hello,
  inState,
} from './flyd-fixture.js';
import { machinePids } from './machine-processes.js';

// A second flyd on a data directory a live flyd uses (a second `npm start`, a typo in a unit)
// exits at once, naming the first one's pid, before it touches anything: the first flyd's
// machines keep running (a second flyd used to kill them as "leftovers" of a crashed one), its
// API keeps answering, and the host row in corrosion still names the first flyd's address.
describe('a second flyd on the same data directory', () => {
  const fixture = new FlydFixture(['--host-id', 'locked-host']);
  let api = '';

  beforeAll(async () => {
    api = await fixture.start();
  });
  afterAll(() => fixture.close());

  it('exits naming the first and leaves its machines, API and host row alone', async () => {
    const id = await createMachine(api, 'locked', hello);
    await inState(api, id, 'started');
    const pidsBefore = machinePids(id);
    expect(pidsBefore).toHaveLength(1);
    const hostRow = async () =>
      (
        await fixture.corrosionClient.queryObjects<{ flyd_addr: string }>([
          'SELECT flyd_addr FROM hosts WHERE id = ?',
          ['locked-host'],
        ])
      )[0]?.flyd_addr;
    await until('the host row', async () => ((await hostRow()) === api ? true : undefined));

    await expectRefusedBeside(fixture, [
      ...['--data-dir', join(fixture.dir, 'flyd'), '--host-id', 'locked-host'],
    ]);

    expect(machinePids(id)).toEqual(pidsBefore);
    expect((await call(api, 'GET', `/v1/machines/${id}`))?.body.state).toBe('started');
    expect(await hostRow()).toBe(api);
  });
});
