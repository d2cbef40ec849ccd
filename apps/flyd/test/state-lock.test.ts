import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { call, createMachine, FlydFixture, flydToken, hello, inState } from './flyd-fixture.js';
import { machinePids } from './machine-processes.js';

const flydMain = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');

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

    const second = startServerProcess({
      command: process.execPath,
      args: [
        flydMain,
        ...['--listen', '127.0.0.1:0', '--data-dir', join(fixture.dir, 'flyd')],
        ...[
          '--corrosion-url',
          present(fixture.corrosion.urls.api, 'fixture.corrosion.urls.api'),
          '--host-id',
          'locked-host',
        ],
        '--stop-machines-on-exit',
      ],
      listeners: ['api'],
      env: { ...process.env, FLYD_TOKEN: flydToken, LOG_LEVEL: 'error' },
    });
    // Should it start after all (the bug), it is stopped with the test, not left running.
    onTestFinished(() => second.then((server) => server.stop()).catch(() => undefined));
    const firstPid = present(fixture.flyd?.child.pid, 'the first flyd pid');
    await expect(second).rejects.toThrow(new RegExp(`exited \\(1\\)[\\s\\S]*pid ${firstPid}`));

    expect(machinePids(id)).toEqual(pidsBefore);
    expect((await call(api, 'GET', `/v1/machines/${id}`))?.body.state).toBe('started');
    expect(await hostRow()).toBe(api);
  });
});
