import { readdirSync, readFileSync } from 'node:fs';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectStatus } from './expect-status.js';
import { call, createMachine, FlydFixture, hello, inState } from './flyd-fixture.js';

/** Pids of processes whose command line is exactly `sleep <seconds>`. */
function sleeping(seconds: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (
        argv.length === 2 &&
        present(argv[0], 'argv[0]').endsWith('sleep') &&
        argv[1] === String(seconds)
      ) {
        pids.push(Number(entry));
      }
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Resolves once no `sleep <seconds>` runs (bounded), else fails naming the survivors. */
const gone = (seconds: number) =>
  until(`sleep ${seconds} gone`, async () => (sleeping(seconds).length === 0 ? true : undefined));

// exec runs inside the machine: its processes are the machine's, they end on timeout (the whole
// group, not just the direct child) and with the machine, and big output is cut, not refused.
describe('exec', () => {
  const fixture = new FlydFixture();
  let api = '';
  let id = '';

  beforeAll(async () => {
    api = await fixture.start();
    id = await createMachine(api, 'exec', hello);
    await inState(api, id, 'started');
  });
  afterAll(async () => {
    for (const seconds of [7771, 7772, 7773]) {
      for (const pid of sleeping(seconds)) process.kill(pid, 'SIGKILL');
    }
    await fixture.close();
  });

  it('kills every process of the command when its timeout passes', async () => {
    const answer = expectStatus(
      await call(api, 'POST', `/v1/machines/${id}/exec`, {
        cmd: 'sleep 7771 & sleep 7772',
        timeout: 1,
      }),
      200,
      'exec',
    );
    expect(answer.body).toMatchObject({ exit_signal: 9 });
    await gone(7771);
    await gone(7772);
  });

  it('cuts output past 1 MiB and says so', async () => {
    const answer = expectStatus(
      await call(api, 'POST', `/v1/machines/${id}/exec`, {
        command: ['node', '-e', "process.stdout.write('x'.repeat(3 * 1024 * 1024))"],
        timeout: 30,
      }),
      200,
      'exec',
    );
    expect(answer.body.exit_code).toBe(0);
    expect((answer.body.stdout as string).length).toBe(1024 * 1024);
    expect(answer.body.truncated).toBe(true);
  });

  it('answers 400 naming the command that cannot run', async () => {
    const answer = await call(api, 'POST', `/v1/machines/${id}/exec`, {
      command: ['/no/such/command'],
      timeout: 5,
    });
    expect(answer).toMatchObject({
      status: 400,
      body: { code: 'FLYD_ERR_BAD_REQUEST', error: 'exec: /no/such/command cannot run (ENOENT)' },
    });
  });

  it('a process exec left running in the background ends when the machine stops', async () => {
    expectStatus(
      await call(api, 'POST', `/v1/machines/${id}/exec`, {
        cmd: 'setsid sleep 7773 > /dev/null 2>&1 < /dev/null &',
        timeout: 5,
      }),
      200,
      'exec',
    );
    await until('sleep started', async () => (sleeping(7773).length > 0 ? true : undefined));
    expectStatus(await call(api, 'POST', `/v1/machines/${id}/stop`), 200, 'stop');
    await inState(api, id, 'stopped');
    await gone(7773);
  });
});
