import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { FlapsClient } from '@fleet/flaps-client';
import { StateLockedError } from '@fleet/service';
import { HarnessBusyError } from '../hosts/runs.js';
import { startTopologyFleet, type TopologyFleet } from '../hosts/topology-fleet.js';
import type { Topology } from '../topology/load.js';
import { controlSocketName, startControlServer } from '../wan/control-server.js';
import { demoMachineConfig, waitForProxy } from './demo.js';
import { shownPath, watchOutput, write } from './output.js';

export interface TopologyRunOptions {
  topology: Topology;
  stateDir: string;
  domain: string;
  app: string;
  image: string;
  startTimeoutMs: number;
}

/**
 * `npm start -- --topology <file>` with more than one host: the fleet on namespaces and the
 * emulated WAN, a demo app with a machine in every region that has a worker, the control API
 * for `fleet-wan`; runs until Ctrl-C, SIGTERM or SIGHUP, then removes everything it made.
 */
export async function runTopology(options: TopologyRunOptions): Promise<void> {
  const { topology, stateDir } = options;
  write(
    `starting ${topology.name}: ${topology.hosts.length} hosts in ${topology.regions.length} regions, each host its own network namespace...\n`,
  );
  const fleet = await startTopologyFleet(options).catch((error: Error) => {
    if (error instanceof StateLockedError || error instanceof HarnessBusyError)
      process.stderr.write(`${error.message}\nnothing was changed.\n`);
    else
      process.stderr.write(
        `the fleet could not start: ${error.message}\nlogs: ${stateDir}/<host>/logs\n`,
      );
    process.exit(1);
  });
  for (const line of fleet.network.removedLeftovers) write(`${line}\n`);
  const socketPath = join(stateDir, controlSocketName);
  const control = await startControlServer(fleet, socketPath);
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    write('\nstopping the fleet...\n');
    control.close();
    rmSync(socketPath, { force: true });
    await fleet.stop();
    write('stopped: every process, namespace and link of the run removed.\n');
    process.exit(0);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, shutdown);
  watchOutput(shutdown);
  // Any other way out: the servers and the forwarder see their pipes close and stop; the next
  // start removes the namespaces (and says so).
  process.on('exit', () => {
    for (const host of fleet.hosts.values())
      for (const server of host.servers) server.child.kill('SIGTERM');
  });
  try {
    await startDemo(fleet, options);
  } catch (error) {
    process.stderr.write(
      `the fleet started but the demo app did not come up: ${(error as Error).message}\n`,
    );
    await shutdown();
  }
  printWelcome(fleet, options);
}

async function startDemo(fleet: TopologyFleet, options: TopologyRunOptions): Promise<void> {
  const flaps = new FlapsClient(fleet.apiUrl, fleet.secrets.apiToken);
  if ((await flaps.getApp(options.app)) === undefined) await flaps.createApp(options.app);
  const withWorkers = new Set(
    fleet.specs.filter((spec) => spec.roles.includes('worker')).map((spec) => spec.region),
  );
  const existing = await flaps.listMachines(options.app);
  for (const region of withWorkers) {
    const kept = existing.find(
      (machine) => machine.region === region && machine.state !== 'destroyed',
    );
    const machine =
      kept ??
      (await flaps.createMachine(options.app, {
        region,
        config: demoMachineConfig(options.image),
      }));
    if (kept && kept.state !== 'started') await flaps.startMachine(options.app, kept.id);
    await flaps.waitMachine(options.app, machine.id, 'started');
  }
  const host = `${options.app}.${options.domain}`;
  for (const running of fleet.hosts.values())
    if (running.urls.proxy)
      await waitForProxy(running.urls.proxy, host, (answer) => answer.status === 200, 60_000);
}

function printWelcome(fleet: TopologyFleet, options: TopologyRunOptions): void {
  const host = `${options.app}.${options.domain}`;
  const stateDir = shownPath(options.stateDir);
  const edges = fleet.specs
    .filter((spec) => spec.roles.includes('edge'))
    .map(
      (spec) =>
        `  ${spec.region} edge ${spec.id.padEnd(10)} curl -s -H 'Host: ${host}' ${fleet.hosts.get(spec.id)?.urls.proxy}/`,
    );
  write(
    [
      '',
      `Fleet is up: ${fleet.topology.name}, ${fleet.specs.length} hosts (run ${fleet.network.runId}; namespaces fleet-${fleet.network.runId}-<host>).`,
      `  Machines API       ${fleet.apiUrl}   (token in ${stateDir}/secrets.json)`,
      ...edges,
      `  WAN and hosts      node infra/dist/wan/cli.js --state-dir ${stateDir} status | link iad lhr --latency-ms 80 | partition syd | heal | kill <host>`,
      `  state, logs        ${stateDir}/<host>/logs/`,
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );
}
