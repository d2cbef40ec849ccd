import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callExpecting } from './expect-status.js';
import { call, FlydFixture, inState } from './flyd-fixture.js';
import { machinePids } from './machine-processes.js';
import { tempDir } from './temp-dirs.js';

interface Event {
  type: string;
  status: string;
  request?: { exit_event?: { exit_code: number }; restart_count?: number };
}

/**
 * A machine whose process fails (exit 1) its first `failures` launches, counting them in a file
 * outside its root (the root is fresh at every launch), then stays up. The file's folder must let
 * the machine's own user write: before it did, every launch failed on EACCES, and the test
 * passed only while it looked before the seventh launch had failed too.
 */
const flaky = (counter: string, failures: number, restart: Record<string, unknown>) => ({
  image: 'hello',
  init: {
    exec: [
      'node',
      '-e',
      `const fs = require('node:fs');
       let count = 0;
       try { count = Number(fs.readFileSync(${JSON.stringify(counter)}, 'utf8')); } catch {}
       fs.writeFileSync(${JSON.stringify(counter)}, String(count + 1));
       if (count < ${failures}) setTimeout(() => process.exit(1), 20);
       else setInterval(() => {}, 1000);`,
    ],
  },
  restart,
});

// flyd is killed with SIGKILL while a restart-policy restart waits out its backoff (the 6th
// failure waits 3.2 s). The next flyd reads the exit and the retries spent from the machine's
// last exit event (`restart_count`) and starts it again; machines whose policy says no more
// restarts stay stopped.
describe('restart-policy restarts pending when flyd dies', () => {
  const fixture = new FlydFixture();
  let api = '';

  beforeAll(async () => {
    api = await fixture.start();
  });
  afterAll(() => fixture.close());

  const exits = async (id: string) =>
    (((await call(api, 'GET', `/v1/machines/${id}`))?.body.events ?? []) as Event[]).filter(
      (event) => event.type === 'exit' && event.request?.exit_event,
    );
  const create = async (config: unknown) =>
    (await call(api, 'POST', '/v1/machines', { app: 'flaky', config }))?.body.id as string;

  it('starts a machine again at boot when its policy still wanted a restart', async () => {
    const counters = tempDir('fleet-restarts-');
    chmodSync(counters, 0o777); // the machines run as users of their own
    const pending = await create(flaky(join(counters, 'pending'), 6, {}));
    // Stays down after its second failure: max_retries 1 is spent.
    const spent = await create(
      flaky(join(counters, 'spent'), 99, { policy: 'on-failure', max_retries: 1 }),
    );
    const never = await create(flaky(join(counters, 'never'), 99, { policy: 'no' }));

    // The 6th exit (restart_count 5) waits 100 ms × 2^5 = 3.2 s for its restart: kill flyd then.
    await until('six failures', async () =>
      (await exits(pending)).length >= 6 ? true : undefined,
    );
    const [last] = await exits(pending);
    expect(last?.request?.restart_count).toBe(5);
    expect((await call(api, 'GET', `/v1/machines/${pending}`))?.body.state).toBe('stopped');
    await until('spent', async () => ((await exits(spent)).length >= 2 ? true : undefined));
    await until('never', async () => ((await exits(never)).length >= 1 ? true : undefined));
    await fixture.kill();

    api = await fixture.startFlyd();
    await inState(api, pending, 'started');
    expect(machinePids(pending)).toHaveLength(1);
    expect(await exits(pending)).toHaveLength(6); // the 7th launch stays up
    // Neither of the others was started again. No wait for it: boot decides every machine in
    // one pass, and a restart their policy had wrongly owed would be due within 200 ms of boot
    // (the backoff after their first or second exit, jitter included), long before the pending
    // machine's 1.6-3.2 s: by now it would have them starting or started.
    for (const id of [spent, never]) {
      expect((await call(api, 'GET', `/v1/machines/${id}`))?.body.state).toBe('stopped');
      expect(machinePids(id)).toHaveLength(0);
    }
    expect(await exits(spent)).toHaveLength(2);
    expect(await exits(never)).toHaveLength(1);
    for (const id of [pending, spent, never])
      await callExpecting(api, 'DELETE', `/v1/machines/${id}?kill=true`);
  }, 60_000);
});
