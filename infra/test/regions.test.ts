import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CorrosionClient } from '@fleet/corrosion-client';
import { FlapsClient, type Machine } from '@fleet/flaps-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostPorts } from '../src/hosts/ports.js';
import { removeDeadRuns } from '../src/hosts/runs.js';
import { startTopologyFleet, type TopologyFleet } from '../src/hosts/topology-fleet.js';
import { demoMachineConfig, getThroughProxy, waitForProxy } from '../src/launcher/demo.js';
import { parseTopology } from '../src/topology/load.js';
import { controlSocketName, startControlServer } from '../src/wan/control-server.js';
import { forwarderCall } from '../src/wan/forwarder.js';

// A three-region fleet on real namespaces and the emulated WAN (one host per region, edge and
// worker, to fit two cores): it comes up as one gossip cluster, places by region, serves each
// request in the region it entered or the closest other, and converges after a partition.
const topology = parseTopology({
  regions: [
    { code: 'iad', name: 'Ashburn', lat: 38.94, lon: -77.46 },
    { code: 'lhr', name: 'London', lat: 51.47, lon: -0.45 },
    { code: 'syd', name: 'Sydney', lat: -33.94, lon: 151.18 },
  ],
  hosts: [
    { id: 'iad-1', region: 'iad', roles: ['edge', 'worker'], api: true },
    // Small, so that a big machine finds lhr exhausted.
    { id: 'lhr-1', region: 'lhr', roles: ['edge', 'worker'], memory_mb: 1024 },
    { id: 'syd-1', region: 'syd', roles: ['edge', 'worker'] },
  ],
  // Shorter than the real distances: the same order (iad–lhr closest), quicker tests.
  links: [
    { between: ['iad', 'lhr'], latency_ms: 20 },
    { between: ['iad', 'syd'], latency_ms: 60 },
    { between: ['lhr', 'syd'], latency_ms: 70 },
  ],
});
const domain = 'fleet.test';
const stateDir = mkdtempSync(join(tmpdir(), 'regions-'));
let fleet: TopologyFleet;
let flaps: FlapsClient;
let control: Server | undefined;
const cliPath = fileURLToPath(new URL('../dist/wan/cli.js', import.meta.url));
const corrosions = new Map<string, CorrosionClient>();

beforeAll(async () => {
  fleet = await startTopologyFleet({ topology, stateDir, domain, startTimeoutMs: 60_000 });
  flaps = new FlapsClient(fleet.apiUrl, fleet.secrets.apiToken);
  for (const host of fleet.hosts.values())
    corrosions.set(
      host.spec.id,
      new CorrosionClient({ url: host.urls.corrosion, token: fleet.secrets.corrosionToken }),
    );
}, 180_000);

afterAll(async () => {
  control?.close();
  for (const corrosion of corrosions.values()) await corrosion.close();
  await fleet?.stop();
  await removeDeadRuns(); // anything a failed start left
  rmSync(stateDir, { recursive: true, force: true });
}, 120_000);

// The edge of a region, from the plan (a killed host is not in fleet.hosts).
const edgeOf = (region: string) =>
  `http://${fleet.specs.find((spec) => spec.region === region)!.address}:${hostPorts.edge}`;
const servedFrom = async (region: string, app: string) =>
  JSON.parse((await getThroughProxy(edgeOf(region), `${app}.${domain}`)).body).region as string;

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${what} did not happen in time${last ? `: ${(last as Error).message}` : ''}`);
}

async function machineIn(app: string, region: string): Promise<Machine> {
  const machine = await flaps.call<Machine & { host_id?: string }>(
    'POST',
    `/v1/apps/${app}/machines`,
    {
      region,
      config: demoMachineConfig('hello'),
    },
  );
  // Polled rather than flaps' wait: flaps reads the machine from its own corrosion, where the
  // row of a machine created on another region's worker arrives a moment later (a 404 until then).
  await until(`machine ${machine.id} started`, async () => {
    const shown = await flaps.call<Machine>('GET', `/v1/apps/${app}/machines/${machine.id}`);
    return shown.state === 'started' ? shown : undefined;
  });
  return machine;
}

describe('a fleet of three regions', () => {
  it("comes up with every host's corrosion seeing every other", async () => {
    for (const host of fleet.hosts.values()) {
      await until(`${host.spec.id} seeing the others`, async () => {
        const response = await fetch(`${host.urls.corrosion}/v1/status`, {
          headers: { authorization: `Bearer ${fleet.secrets.corrosionToken}` },
        });
        const status = (await response.json()) as { replication: { members: { state: string }[] } };
        const alive = status.replication.members.filter((member) => member.state === 'alive');
        return alive.length === fleet.hosts.size - 1 ? alive : undefined;
      });
    }
  });

  it('places a machine asked for in lhr on the lhr worker', async () => {
    await flaps.call('POST', '/v1/apps', { app_name: 'placed', org_slug: 'personal' });
    const machine = await machineIn('placed', 'lhr');
    const shown = await flaps.call<{ region: string; host_id: string }>(
      'GET',
      `/v1/apps/placed/machines/${machine.id}`,
    );
    expect(shown).toMatchObject({ region: 'lhr', host_id: 'lhr-1' });
  });

  it('an exhausted region answers insufficient_capacity naming the nearest regions with room', async () => {
    const refused = flaps.call('POST', '/v1/apps/placed/machines', {
      region: 'lhr',
      config: { ...demoMachineConfig('hello'), guest: { cpus: 1, memory_mb: 2048 } },
    });
    await expect(refused).rejects.toMatchObject({
      status: 412,
      message: expect.stringMatching(
        /insufficient_capacity: .*region lhr.*nearest regions with room: iad, syd/,
      ),
    });
  });

  it('serves a request in the region it entered, else from the closest region with machines', async () => {
    await flaps.call('POST', '/v1/apps', { app_name: 'geo', org_slug: 'personal' });
    const lhr = await machineIn('geo', 'lhr');
    await machineIn('geo', 'syd');
    const host = `geo.${domain}`;
    const regionIs = (region: string) => (answer: { status: number; body: string }) =>
      answer.status === 200 && JSON.parse(answer.body).region === region;
    await waitForProxy(edgeOf('lhr'), host, regionIs('lhr'), 60_000);
    await waitForProxy(edgeOf('syd'), host, regionIs('syd'), 60_000);
    // iad has no machine: lhr (20 ms away) is closer than syd (60 ms).
    await waitForProxy(edgeOf('iad'), host, regionIs('lhr'), 60_000);
    for (let request = 0; request < 5; request++)
      expect(await servedFrom('iad', 'geo')).toBe('lhr');
    await flaps.call('POST', `/v1/apps/geo/machines/${lhr.id}/stop`, {});
    await waitForProxy(edgeOf('lhr'), host, regionIs('syd'), 60_000);
  });

  it('the control API and its CLI: status, bad names refused, a host restarted serves again', async () => {
    const socketPath = join(stateDir, controlSocketName);
    control = await startControlServer(fleet, socketPath);
    const cli = async (...args: string[]) => {
      const child = spawn(process.execPath, [cliPath, '--state-dir', stateDir, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      child.stderr!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      return { code, output };
    };
    const status = await cli('status');
    expect(status.code).toBe(0);
    expect(
      JSON.parse(status.output).hosts.map((host: { address: string }) => host.address),
    ).toEqual(['198.18.1.10', '198.18.2.10', '198.18.3.10']);
    expect(await cli('partition', 'ord')).toMatchObject({
      code: 1,
      output: expect.stringContaining('no host \\"ord\\"'),
    });
    expect(await cli('link', 'iad', 'lhr', '--loss', '2')).toMatchObject({
      code: 1,
      output: expect.stringContaining('loss'),
    });
    expect(await cli('kill')).toMatchObject({ code: 2, output: expect.stringContaining('usage') });
    expect(await cli('restart', 'nope')).toMatchObject({
      code: 1,
      output: expect.stringContaining('WAN_ERR_UNKNOWN_HOST'),
    });
    expect((await cli('kill', 'lhr-1')).code).toBe(0);
    await expect(getThroughProxy(edgeOf('lhr'), `geo.${domain}`, 1000)).rejects.toThrow();
    expect((await cli('restart', 'lhr-1')).code).toBe(0);
    corrosions.get('lhr-1')!.close();
    corrosions.set(
      'lhr-1',
      new CorrosionClient({
        url: fleet.hosts.get('lhr-1')!.urls.corrosion,
        token: fleet.secrets.corrosionToken,
      }),
    );
    await waitForProxy(edgeOf('lhr'), `geo.${domain}`, (answer) => answer.status === 200, 60_000);
  }, 150_000);

  it('a partitioned region keeps serving its own machines; after healing every table is identical', async () => {
    const syd = fleet.network.hosts
      .filter((host) => host.region === 'syd')
      .map((host) => host.address);
    await forwarderCall(fleet.network.forwarder.controlPath, { op: 'partition', hosts: syd });
    let lastWrite = 0;
    try {
      const iadCorrosion = corrosions.get('iad-1');
      const sydCorrosion = corrosions.get('syd-1');
      // Writes on both sides until syd's agent has noticed the cut (no other member alive any
      // more), so the partition lasts through SWIM's suspicion, not just a few packets.
      let writes = 0;
      await until('syd seeing no other member alive', async () => {
        await iadCorrosion!.transaction([
          [`INSERT INTO apps (name) VALUES (?)`, [`split-iad-${writes}`]],
        ]);
        await sydCorrosion!.transaction([
          [`INSERT INTO apps (name) VALUES (?)`, [`split-syd-${writes}`]],
        ]);
        writes++;
        const response = await fetch(`${fleet.hosts.get('syd-1')!.urls.corrosion}/v1/status`, {
          headers: { authorization: `Bearer ${fleet.secrets.corrosionToken}` },
        });
        const status = (await response.json()) as { replication: { members: { state: string }[] } };
        return status.replication.members.some((member) => member.state === 'alive')
          ? undefined
          : true;
      });
      lastWrite = writes - 1;
      // The cut is real: iad's side does not see syd's writes.
      const seen = await iadCorrosion!.queryObjects<{ name: string }>(
        "SELECT name FROM apps WHERE name LIKE 'split-syd-%'",
      );
      expect(seen).toEqual([]);
      expect(await servedFrom('syd', 'geo')).toBe('syd');
    } finally {
      await forwarderCall(fleet.network.forwarder.controlPath, { op: 'heal' });
    }
    const tables = ['apps', 'machines', 'hosts', 'regions'];
    await until(
      'every host holding the same rows',
      async () => {
        const dumps = await Promise.all(
          [...corrosions.values()].map(async (corrosion) =>
            JSON.stringify(
              await Promise.all(
                tables.map((table) => corrosion.query(`SELECT * FROM ${table} ORDER BY 1`)),
              ),
            ),
          ),
        );
        return dumps.every((dump) => dump === dumps[0]) &&
          dumps[0]!.includes(`split-syd-${lastWrite}"`) &&
          dumps[0]!.includes(`split-iad-${lastWrite}"`)
          ? dumps
          : undefined;
      },
      90_000,
    );
  }, 150_000);

  it('kill -9 of a worker host: the edges stop routing to its machines', async () => {
    await flaps.call('POST', '/v1/apps', { app_name: 'lost', org_slug: 'personal' });
    await machineIn('lost', 'lhr');
    await machineIn('lost', 'syd');
    const regionIs = (region: string) => (answer: { status: number; body: string }) =>
      answer.status === 200 && JSON.parse(answer.body).region === region;
    await waitForProxy(edgeOf('iad'), `lost.${domain}`, regionIs('lhr'), 60_000);
    fleet.killHost('lhr-1');
    await waitForProxy(edgeOf('iad'), `lost.${domain}`, regionIs('syd'), 60_000);
    for (let request = 0; request < 5; request++)
      expect(await servedFrom('iad', 'lost')).toBe('syd');
  }, 150_000);
});
