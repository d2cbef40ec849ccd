import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { present } from '@fleet/service/invariant';
import { procStat } from '@fleet/service/proc-stat';
import { until } from '@fleet/service/vitest-until';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { expectStatus } from './expect-status.js';
import { call, createMachine, FlydFixture, hello, inState } from './flyd-fixture.js';
import { machinePids } from './machine-processes.js';

/** GETs `url` again and again until stopped; counts the answers and the failures. */
function steadyTraffic(url: string) {
  const counts = { ok: 0, failed: 0, errors: [] as string[] };
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const response = await fetch(url);
        await response.text();
        if (response.status === 200) counts.ok++;
        else {
          counts.failed++;
          counts.errors.push(`status ${response.status}`);
        }
      } catch (error) {
        counts.failed++;
        counts.errors.push(String((error as Error).cause ?? error));
      }
    }
  })();
  return {
    counts,
    /** Resolves once `more` further requests were answered, so traffic ran through what came before. */
    async after(more: number): Promise<void> {
      const target = counts.ok + counts.failed + more;
      await until('traffic', async () => (counts.ok + counts.failed >= target ? true : undefined));
    },
    async stop(): Promise<void> {
      running = false;
      await loop;
    },
  };
}

// Machines outlive flyd (issue 18): a flyd that exits leaves them running, the next one on the
// same data directory adopts them (same process), and one that died meanwhile gets its policy.
describe('machines across a flyd restart', () => {
  let fixture: FlydFixture;

  afterEach(async () => {
    await fixture.close(); // kills whatever machine a failed test left in its folder
  });

  it('keeps serving through a SIGTERM and restart of flyd, then is adopted', async () => {
    fixture = new FlydFixture();
    fixture.stopMachinesOnExit = false;
    let api = await fixture.start();
    const id = await createMachine(api, 'adopt', hello);
    const machine = await inState(api, id, 'started');
    const pids = machinePids(id);
    expect(pids).toHaveLength(1);

    const traffic = steadyTraffic(`http://${machine.private_addr}/`);
    try {
      await traffic.after(20);
      await fixture.stopFlyd(); // SIGTERM
      expect(machinePids(id)).toEqual(pids);
      await traffic.after(20);
      api = await fixture.startFlyd();
      await traffic.after(20);
    } finally {
      await traffic.stop();
    }
    expect(traffic.counts.errors).toEqual([]);
    expect(traffic.counts.failed).toBe(0);
    expect(machinePids(id)).toEqual(pids);
    const adopted = await inState(api, id, 'started');
    expect(adopted.private_addr).toBe(machine.private_addr);

    // The adopted machine is flyd's as any other: exec, processes, stop and its logs.
    const exec = expectStatus(
      await call(api, 'POST', `/v1/machines/${id}/exec`, {
        command: ['sh', '-c', 'echo $FLY_MACHINE_ID'],
      }),
      200,
      'exec on the adopted machine',
    );
    expect(exec.body).toMatchObject({ stdout: `${id}\n`, exit_code: 0 });
    expectStatus(await call(api, 'POST', `/v1/machines/${id}/stop`, {}), 200, 'stop');
    await inState(api, id, 'stopped');
    await until('machine gone', async () => (machinePids(id).length === 0 ? true : undefined));
    // What it wrote on its way out was read from its output file by the new flyd.
    await until('the stop logged', async () => {
      const logs = await call(api, 'GET', `/v1/machines/${id}/logs`);
      const lines = logs?.body as unknown as { message: string }[];
      return lines.some((line) => line.message.includes('SIGTERM, shutting down'))
        ? true
        : undefined;
    });
    const events = (await call(api, 'GET', `/v1/machines/${id}`))?.body.events as {
      type: string;
    }[];
    expect(events.filter((event) => event.type === 'exit')).toHaveLength(1); // the stop's, no crash
  });

  it('restarts per policy a machine whose process died while flyd was away', async () => {
    fixture = new FlydFixture();
    fixture.stopMachinesOnExit = false;
    let api = await fixture.start();
    const id = await createMachine(api, 'adopt', hello); // on-failure, the default policy
    await inState(api, id, 'started');
    const [pid] = machinePids(id);
    await fixture.stopFlyd();
    process.kill(present(pid, 'pid'), 'SIGKILL');
    await until('machine gone', async () => (machinePids(id).length === 0 ? true : undefined));

    api = await fixture.startFlyd();
    const restarted = await until('a new process', async () => {
      const pids = machinePids(id);
      return pids.length === 1 && pids[0] !== pid ? pids[0] : undefined;
    });
    expect(restarted).not.toBe(pid);
    const view = await inState(api, id, 'started');
    const response = await fetch(`http://${view.private_addr}/`);
    expect(((await response.json()) as { machine_id: string }).machine_id).toBe(id);
    const events = view.events as { type: string; request?: { exit_event?: unknown } }[];
    expect(events.some((event) => event.type === 'exit' && event.request?.exit_event)).toBe(true);

    expectStatus(await call(api, 'POST', `/v1/machines/${id}/stop`, {}), 200, 'stop');
    await until('machine gone', async () => (machinePids(id).length === 0 ? true : undefined));
  });

  it('never adopts another process that holds the recorded pid and start time', async () => {
    fixture = new FlydFixture();
    fixture.stopMachinesOnExit = false;
    let api = await fixture.start();
    const id = await createMachine(api, 'adopt', { ...hello, restart: { policy: 'no' } });
    await inState(api, id, 'started');
    const [pid] = machinePids(id);
    await fixture.stopFlyd();
    process.kill(present(pid, 'pid'), 'SIGKILL');
    await until('machine gone', async () => (machinePids(id).length === 0 ? true : undefined));
    // A recycled pid: another process now has it, recorded as the machine's with its start time.
    const stranger = spawn('sleep', ['600'], { stdio: 'ignore' });
    try {
      const strangerPid = present(stranger.pid, 'stranger.pid');
      const db = new Database(join(fixture.dir, 'flyd', 'flyd.db'));
      db.prepare('UPDATE machines SET pid = ? WHERE id = ?').run(strangerPid, id);
      db.close();
      const startTime = present(procStat(strangerPid), 'stranger /proc stat').startTime;
      const record = join(fixture.dir, 'flyd', 'machines', id, 'process.json');
      writeFileSync(record, JSON.stringify({ pid: strangerPid, startTime }));

      api = await fixture.startFlyd();
      // Not adopted: the machine's process is gone, and its policy (`no`) leaves it stopped.
      const view = await inState(api, id, 'stopped');
      expect(view.state).toBe('stopped');
      expect(machinePids(id)).toEqual([]);
      expect(stranger.exitCode).toBeNull(); // and the stranger is not flyd's to stop
      expect(stranger.signalCode).toBeNull();
    } finally {
      stranger.kill('SIGKILL');
    }
  });
});
