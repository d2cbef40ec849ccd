import { FlapsClient, type Machine } from '@fleet/flaps-client';
import { isRunning } from '@fleet/service';
import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoMachineConfig, getThroughProxy, waitForProxy } from '../src/launcher/demo.js';
import type { Fleet } from '../src/launcher/fleet.js';
import { pidsWithEnv } from './processes.js';
import { startTestFleet } from './test-fleet.js';

// The walking skeleton end to end: a real fleet (corrosion, flyd, flaps, fly-proxy as processes
// on ephemeral ports) serves a machine created through the Machines API, reflects stop, start
// and destroy at the proxy, and leaves no process behind when it stops.
describe('a local fleet, end to end', () => {
  const app = 'e2e-app';
  const host = `${app}.fleet.test`;
  let fleet: Fleet;
  let flaps: FlapsClient;
  let machine: Machine;
  const seenPids = new Set<number>();

  beforeAll(async () => {
    fleet = await startTestFleet('e2e');
    for (const server of fleet.servers) seenPids.add(server.child.pid!);
    flaps = new FlapsClient(fleet.urls.flaps, fleet.secrets.apiToken);
  });

  afterAll(async () => {
    await fleet?.stop();
  });

  it('routes a request through fly-proxy to a machine created through flaps', async () => {
    await flaps.createApp(app);
    machine = await flaps.createMachine(app, {
      region: 'local',
      config: demoMachineConfig('hello'),
    });
    expect(machine.id).toMatch(/^[0-9a-f]{14}$/);
    await flaps.waitMachine(app, machine.id, 'started');
    const answer = await waitForProxy(fleet.urls.proxy, host, (reply) => reply.status === 200);
    expect(JSON.parse(answer.body)).toMatchObject({ machine_id: machine.id, region: 'local' });
    for (const pid of pidsWithEnv('FLY_MACHINE_ID', machine.id)) seenPids.add(pid);
    expect(pidsWithEnv('FLY_MACHINE_ID', machine.id).length).toBeGreaterThan(0);
  });

  it('answers 404 with a JSON error for an app it does not know', async () => {
    const answer = await getThroughProxy(fleet.urls.proxy, 'nobody-here.fleet.test');
    expect(answer.status).toBe(404);
    expect(JSON.parse(answer.body).error).toMatch(/nobody-here/);
  });

  it('answers 503 with a reason once the machine is stopped, and routes again after start', async () => {
    await flaps.stopMachine(app, machine.id);
    await flaps.waitMachine(app, machine.id, 'stopped');
    const stopped = await waitForProxy(fleet.urls.proxy, host, (reply) => reply.status === 503);
    expect(JSON.parse(stopped.body).error).toMatch(/started machine/);
    expect(pidsWithEnv('FLY_MACHINE_ID', machine.id).filter(isRunning)).toEqual([]);

    await flaps.startMachine(app, machine.id);
    await flaps.waitMachine(app, machine.id, 'started');
    const again = await waitForProxy(fleet.urls.proxy, host, (reply) => reply.status === 200);
    expect(JSON.parse(again.body).machine_id).toBe(machine.id);
    for (const pid of pidsWithEnv('FLY_MACHINE_ID', machine.id)) seenPids.add(pid);
  });

  it('destroys the machine: the proxy stops routing to it and its process is gone', async () => {
    await flaps.destroyMachine(app, machine.id, true);
    await waitForProxy(fleet.urls.proxy, host, (reply) => reply.status === 503);
    expect(pidsWithEnv('FLY_MACHINE_ID', machine.id).filter(isRunning)).toEqual([]);
    const listed = await flaps.listMachines(app);
    expect(listed.filter((item) => item.id === machine.id && item.state !== 'destroyed')).toEqual(
      [],
    );
  });

  it('stops routing to a machine whose health check fails, and routes to it again once it passes', async () => {
    const config = {
      ...demoMachineConfig('hello'),
      checks: {
        alive: { type: 'http', port: 8080, path: '/', interval: '100ms', timeout: '300ms' },
      },
    };
    const [sick, well] = [
      await flaps.createMachine(app, { config }),
      await flaps.createMachine(app, { config }),
    ];
    for (const machine of [sick!, well!]) await flaps.waitMachine(app, machine.id, 'started');
    for (const pid of [
      ...pidsWithEnv('FLY_MACHINE_ID', sick!.id),
      ...pidsWithEnv('FLY_MACHINE_ID', well!.id),
    ])
      seenPids.add(pid);
    const servedBy = async () => {
      const ids = new Set<string>();
      for (let i = 0; i < 6; i++) {
        // A request that reached the frozen machine before the proxy learnt of it hangs: give up.
        const answer = await getThroughProxy(fleet.urls.proxy, host, 500).catch(() => undefined);
        if (answer?.status === 200) ids.add(JSON.parse(answer.body).machine_id);
      }
      return ids;
    };
    const servers = (count: number) =>
      until(`${count} machines serving`, servedBy, (ids) => ids.size === count, 15_000);
    expect(await servers(2)).toEqual(new Set([sick!.id, well!.id]));
    await flaps.call('POST', `/v1/apps/${app}/machines/${sick!.id}/signal`, { signal: 'SIGSTOP' });
    expect(await servers(1)).toEqual(new Set([well!.id]));
    await flaps.call('POST', `/v1/apps/${app}/machines/${sick!.id}/signal`, { signal: 'SIGCONT' });
    expect(await servers(2)).toEqual(new Set([sick!.id, well!.id]));
    for (const machine of [sick!, well!]) await flaps.destroyMachine(app, machine.id, true);
  });

  it('stops every process it started', async () => {
    // A second machine left running proves flyd takes its machines down when the fleet stops.
    const survivor = await flaps.createMachine(app, { config: demoMachineConfig('hello') });
    await flaps.waitMachine(app, survivor.id, 'started');
    const survivorPids = pidsWithEnv('FLY_MACHINE_ID', survivor.id);
    expect(survivorPids.length).toBeGreaterThan(0);
    for (const pid of survivorPids) seenPids.add(pid);
    await fleet.stop();
    for (const server of fleet.servers) expect(server.child.exitCode).toBe(0);
    expect([...seenPids].filter(isRunning)).toEqual([]);
  });
});
