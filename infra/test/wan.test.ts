import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { checkOwnAddress, planAddresses } from '../src/hosts/addresses.js';
import { listNamespaces } from '../src/hosts/netns.js';
import { removeDeadRuns, removeRun } from '../src/hosts/runs.js';
import { parseTopology } from '../src/topology/load.js';
import { forwarderCall } from '../src/wan/forwarder.js';
import { type Network, startNetwork } from '../src/wan/network.js';
import { echoServer, roundTrips, runIn, stopChild } from './netns-helpers.js';

// The emulated WAN on real namespaces: hosts of two regions reach each other over TCP and UDP
// no faster than the configured one-way delay allows (and two hosts of one region reach each other too),
// a partition cuts them apart until healed, and nothing of a run outlives it — not even after a
// kill -9 of the process that built it.
const topology = parseTopology({
  regions: [
    { code: 'iad', name: 'Ashburn', lat: 38.94, lon: -77.46 },
    { code: 'lhr', name: 'London', lat: 51.47, lon: -0.45 },
  ],
  hosts: [
    { id: 'iad-1', region: 'iad', roles: ['worker'] },
    { id: 'iad-2', region: 'iad', roles: ['worker'] },
    { id: 'lhr-1', region: 'lhr', roles: ['edge'] },
  ],
  links: [{ between: ['iad', 'lhr'], latency_ms: 40 }],
});
const dirs: string[] = [];
const networks: Network[] = [];
const children: ReturnType<typeof runIn>['child'][] = [];

afterEach(async () => {
  for (const child of children.splice(0)) await stopChild(child);
  for (const network of networks.splice(0)) await network.stop();
});
afterAll(async () => {
  for (const network of networks) await removeRun(network.runId);
  await removeDeadRuns(); // a killed builder's run, should its test have failed before the next start
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const stateDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'wan-'));
  dirs.push(dir);
  return dir;
};

async function measure(network: Network, from: string, to: string, boundMs = 3000) {
  const target = network.hosts.find((host) => host.id === to)!;
  const server = runIn(target.namespace, echoServer, [target.address]);
  children.push(server.child);
  const ports = JSON.parse(await server.firstLine) as { tcp: number; udp: number };
  const source = network.hosts.find((host) => host.id === from)!;
  const probe = runIn(source.namespace, roundTrips, [
    target.address,
    `${ports.tcp}`,
    `${ports.udp}`,
    `${boundMs}`,
  ]);
  children.push(probe.child);
  const result = JSON.parse(await probe.firstLine) as {
    tcpMs: number | null;
    udpMs: number | null;
  };
  await stopChild(server.child);
  return result;
}

describe('the WAN emulator', () => {
  it('carries TCP and UDP between regions after the configured delay, each way', async () => {
    const network = await startNetwork(topology, stateDir());
    networks.push(network);
    const local = await measure(network, 'iad-2', 'iad-1');
    const remote = await measure(network, 'lhr-1', 'iad-1');
    // A round trip crosses the 40 ms link twice: never faster than 80 ms.
    expect(remote.tcpMs).toBeGreaterThanOrEqual(80);
    expect(remote.udpMs).toBeGreaterThanOrEqual(80);
    // Within a region nothing is held back long enough to compare with a noisy clock: it only has to work.
    expect(local).toEqual({ tcpMs: expect.any(Number), udpMs: expect.any(Number) });
    await forwarderCall(network.forwarder.controlPath, {
      op: 'link',
      a: 'lhr',
      b: 'iad',
      latency_ms: 100,
    });
    const slower = await measure(network, 'lhr-1', 'iad-1');
    expect(slower.tcpMs).toBeGreaterThanOrEqual(200);
  });

  it('a partitioned region reaches no other host until healed; its own hosts still reach each other', async () => {
    const network = await startNetwork(topology, stateDir());
    networks.push(network);
    const iad = network.hosts.filter((host) => host.region === 'iad').map((host) => host.address);
    expect(
      await forwarderCall(network.forwarder.controlPath, { op: 'partition', hosts: iad }),
    ).toMatchObject({ ok: true });
    const cut = await measure(network, 'lhr-1', 'iad-1', 1500);
    expect(cut).toEqual({ tcpMs: null, udpMs: null });
    expect((await measure(network, 'iad-2', 'iad-1')).tcpMs).not.toBeNull();
    await forwarderCall(network.forwarder.controlPath, { op: 'heal' });
    expect((await measure(network, 'lhr-1', 'iad-1')).tcpMs).toBeGreaterThanOrEqual(80);
    const stats = await forwarderCall(network.forwarder.controlPath, { op: 'stats' });
    expect((stats.counters as { dropped_partition: number }).dropped_partition).toBeGreaterThan(0);
  });

  it('refuses addresses it did not assign, and bad control requests, naming the problem', async () => {
    const plan = planAddresses(topology);
    expect(checkOwnAddress('198.18.2.10', plan)).toBe('198.18.2.10');
    expect(() => checkOwnAddress('10.0.0.1', plan)).toThrow(/not an address of this harness/);
    expect(() => checkOwnAddress('198.18.9.10', plan)).toThrow(/refused/);
    const network = await startNetwork(topology, stateDir());
    networks.push(network);
    const call = (request: Record<string, unknown>) =>
      forwarderCall(network.forwarder.controlPath, request);
    expect(await call({ op: 'partition', hosts: ['192.0.2.2'] })).toEqual({
      error: 'hosts: 192.0.2.2 is not a host of this WAN',
    });
    expect(await call({ op: 'link', a: 'iad', b: 'syd', latency_ms: 1 })).toMatchObject({
      error: expect.stringMatching(/no link/),
    });
    expect(await call({ op: 'link', a: 'iad', b: 'lhr', loss: 2 })).toMatchObject({
      error: expect.stringMatching(/^loss/),
    });
    expect(await call({ op: 'fly' })).toMatchObject({
      error: expect.stringMatching(/^op: unknown/),
    });
  });

  it('stop removes every namespace, link and process; a kill -9 leaves them for the next start to remove', async () => {
    const network = await startNetwork(topology, stateDir());
    await network.stop();
    expect((await listNamespaces()).filter((name) => name.includes(network.runId))).toEqual([]);

    // A process that builds a network and is killed -9 before it can clean up.
    const builder = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { parseTopology } from ${JSON.stringify(new URL('../dist/topology/load.js', import.meta.url).href)};
         import { startNetwork } from ${JSON.stringify(new URL('../dist/wan/network.js', import.meta.url).href)};
         const network = await startNetwork(parseTopology(${JSON.stringify({ regions: [{ code: 'iad', name: 'a', lat: 0, lon: 0 }], hosts: [{ id: 'w', region: 'iad', roles: ['worker'] }] })}), ${JSON.stringify(stateDir())});
         console.log(network.runId); setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(builder);
    const deadRunId = await new Promise<string>((resolve) =>
      builder.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString().trim())),
    );
    expect((await listNamespaces()).filter((name) => name.includes(deadRunId))).toHaveLength(2);
    await stopChild(builder);
    const next = await startNetwork(topology, stateDir());
    networks.push(next);
    expect(next.removedLeftovers).toEqual([expect.stringContaining(`run ${deadRunId}`)]);
    expect((await listNamespaces()).filter((name) => name.includes(deadRunId))).toEqual([]);
  });
});
