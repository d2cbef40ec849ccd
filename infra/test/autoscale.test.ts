import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlapsClient, type Machine } from '@fleet/flaps-client';
import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoMachineConfig, getThroughProxy, waitForProxy } from '../src/launcher/demo.js';
import type { Fleet } from '../src/launcher/fleet.js';
import { startTestFleet } from './test-fleet.js';

/** The demo machine with Fly's autostart/autostop settings on its HTTP service. */
function autoscaledConfig(minMachinesRunning: number) {
  const config = demoMachineConfig('hello');
  const services = config.services as Record<string, unknown>[];
  return {
    ...config,
    services: services.map((service) => ({
      ...service,
      autostart: true,
      autostop: 'stop',
      min_machines_running: minMachinesRunning,
    })),
  };
}

// Fly's autostop and autostart on a real one-host fleet: fly-proxy stops the machines nobody
// uses, never below min_machines_running, and a request to an app with none running waits
// while the proxy starts one through the Machines API.
describe('autostop and autostart', () => {
  let fleet: Fleet;
  let flaps: FlapsClient;
  let stateDir: string;

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'fleet-autoscale-'));
    fleet = await startTestFleet('autoscale', {
      stateDir,
      proxyArgs: ['--autostop-interval-ms', '500'],
    });
    flaps = new FlapsClient(fleet.urls.flaps, fleet.secrets.apiToken);
  });

  afterAll(async () => {
    await fleet?.stop();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  const states = async (app: string) =>
    (await flaps.listMachines(app)).map((machine) => machine.state).sort();

  const autostopPasses = async () =>
    (
      (await (await fetch(`${fleet.urls.proxyAdmin}/status`)).json()) as {
        autostop: { passes: number };
      }
    ).autostop.passes;

  it('stops an idle machine, then starts it again for the next request', async () => {
    const app = 'auto-zero';
    await flaps.createApp(app);
    const machine: Machine = await flaps.createMachine(app, { config: autoscaledConfig(0) });
    await flaps.waitMachine(app, machine.id, 'started');
    await waitForProxy(fleet.urls.proxy, `${app}.fleet.test`, (reply) => reply.status === 200);
    await until('the idle machine stopped', async () => (await states(app)).join() === 'stopped');
    const answer = await waitForProxy(
      fleet.urls.proxy,
      `${app}.fleet.test`,
      (reply) => reply.status === 200,
    );
    expect(JSON.parse(answer.body).machine_id).toBe(machine.id);
    // (It may be stopped again by now: nothing uses it. The proxy counts what it did.)
    const status = (await (await fetch(`${fleet.urls.proxyAdmin}/status`)).json()) as {
      autostart: { started: number };
      autostop: { stopped: number };
    };
    expect(status.autostart.started).toBeGreaterThanOrEqual(1);
    expect(status.autostop.stopped).toBeGreaterThanOrEqual(1);
  });

  it('keeps min_machines_running started', async () => {
    const app = 'auto-min';
    await flaps.createApp(app);
    const machines = [
      await flaps.createMachine(app, { config: autoscaledConfig(1) }),
      await flaps.createMachine(app, { config: autoscaledConfig(1) }),
    ];
    for (const machine of machines) await flaps.waitMachine(app, machine.id, 'started');
    await waitForProxy(fleet.urls.proxy, `${app}.fleet.test`, (reply) => reply.status === 200);
    await until('one stopped', async () => (await states(app)).join() === 'started,stopped');
    // Three more passes looked at the app and left its last machine started.
    const passes = await autostopPasses();
    await until('three more autostop passes', async () => (await autostopPasses()) >= passes + 3);
    expect(await states(app)).toEqual(['started', 'stopped']);
  });

  // Before, the request waited out --autostart-timeout-ms and got "no started machine (1 stopped)".
  it('answers why when the machine it starts exits at once', async () => {
    const app = 'auto-crash';
    await flaps.createApp(app);
    const machine = await flaps.createMachine(app, {
      config: {
        ...autoscaledConfig(0),
        init: { exec: ['sh', '-c', 'exit 3'] },
        restart: { policy: 'no' },
      },
    });
    await until('its first launch ended', async () => (await states(app)).join() === 'stopped');
    const answer = await getThroughProxy(fleet.urls.proxy, `${app}.fleet.test`, 30_000);
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body)).toEqual({
      code: 'PROXY_ERR_NO_MACHINE',
      error: `app ${app} has no started machine to take the request (1 stopped); autostarting machine ${machine.id} failed: it exited with code 3 as it started`,
    });
  });
});
