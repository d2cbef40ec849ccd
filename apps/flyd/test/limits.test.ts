import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, FlydFixture, hello, inState } from './flyd-fixture.js';
import { machinePids } from './machine-processes.js';

// A machine's guest memory and CPUs are enforced by cgroups when flyd may create them (as root,
// as on a worker and in CI): a machine that outgrows its memory is OOM-killed, and its exit
// event says so, as Fly's does.
const root = process.getuid?.() === 0;
const newId = () => randomBytes(7).toString('hex');

describe.runIf(root)('machine limits', () => {
  const fixture = new FlydFixture();
  let api: string;
  beforeAll(async () => {
    api = await fixture.start();
  });
  afterAll(() => fixture.close());

  it('runs a machine inside its own groups with its CPU quota', async () => {
    const id = newId();
    const config = { ...hello, guest: { cpus: 2, memory_mb: 512 } };
    expect((await call(api, 'POST', '/v1/machines', { id, app: 'limits', config }))?.status).toBe(
      200,
    );
    await inState(api, id, 'started');
    const [pid] = machinePids(id);
    const groups = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    expect(groups).toContain(`/fleet/${id}`);
    if (groups.includes(':cpu:')) {
      expect(readFileSync(`/sys/fs/cgroup/cpu/fleet/${id}/cpu.cfs_quota_us`, 'utf8').trim()).toBe(
        '200000',
      );
    }
    // Its processes and threads are bounded too (--machine-pids-max, 4096 by default).
    const pidsMax = groups.includes(':pids:')
      ? `/sys/fs/cgroup/pids/fleet/${id}/pids.max`
      : `/sys/fs/cgroup/fleet/${id}/pids.max`;
    expect(readFileSync(pidsMax, 'utf8').trim()).toBe('4096');
    expect((await call(api, 'DELETE', `/v1/machines/${id}?kill=true`))?.status).toBe(200);
  });

  it('OOM-kills a machine over its memory, and its exit event says oom_killed', async () => {
    const id = newId();
    const hog = 'const kept = []; for (;;) kept.push(Buffer.alloc(1 << 20, 1));';
    const config = {
      image: 'hello',
      init: { exec: [process.execPath, '-e', hog] },
      guest: { cpus: 1, memory_mb: 256 },
      restart: { policy: 'no' },
    };
    expect((await call(api, 'POST', '/v1/machines', { id, app: 'limits', config }))?.status).toBe(
      200,
    );
    const exit = await until('the exit event', async () => {
      const answer = await call(api, 'GET', `/v1/machines/${id}`);
      const events = (answer?.body.events ?? []) as { type: string; request?: unknown }[];
      return events.find((event) => event.type === 'exit')?.request;
    });
    expect(exit).toMatchObject({ exit_event: { oom_killed: true, signal: 'SIGKILL' } });
  });
});
