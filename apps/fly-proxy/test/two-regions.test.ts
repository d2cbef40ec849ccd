import type { CorrosionClient } from '@fleet/corrosion-client';
import type { ServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GossipFleet, gossipFleet, httpService } from './gossip-fleet.js';

// Two regions, each with its own corrosion agent (one gossip cluster), an edge and a worker's
// backhaul, and a third region far away: a request is served in the region it enters, leaves it
// only when no local machine can take it — for the closest other region, by the regions'
// distance — and comes back when the local machine does. Rows written in one region route in
// the other.
describe('two regions', () => {
  let fleet: GossipFleet | undefined;
  let edges: { ams: string; fra: string };
  /** Each region's agent, to write rows in one region that the other must learn. */
  let writers: { ams: CorrosionClient; fra: CorrosionClient };

  beforeAll(async () => {
    const regions = gossipFleet('regions');
    fleet = regions;
    const ams = await regions.agent('ams');
    const fra = await regions.agent('fra', ams);
    const keyFile = regions.keyFile;
    const proxy = (corrosion: ServerProcess, region: string, args: string[]) =>
      regions.proxy(corrosion, [...['--region', region, '--fleet-key-file', keyFile], ...args]);
    const backhaul = (corrosion: ServerProcess, region: string, host: string) =>
      proxy(corrosion, region, ['--mode', 'backhaul', '--host-id', host]);
    const [workerAms, workerFra, workerSyd] = [
      await backhaul(ams, 'ams', 'worker-ams'),
      await backhaul(fra, 'fra', 'worker-fra'),
      await backhaul(fra, 'syd', 'worker-syd'),
    ];
    const edgeAms = await proxy(ams, 'ams', ['--host-id', 'edge-ams']);
    const edgeFra = await proxy(fra, 'fra', ['--host-id', 'edge-fra']);
    edges = {
      ams: present(edgeAms.urls.proxy, 'the ams edge URL'),
      fra: present(edgeFra.urls.proxy, 'the fra edge URL'),
    };
    const [amsMachine, fraMachine, sydMachine] = await Promise.all(
      ['ams-1', 'fra-1', 'syd-1'].map((id) => regions.machine(id)),
    );
    writers = { ams: regions.client(ams), fra: regions.client(fra) };
    const backhaulOf = (worker: ServerProcess) =>
      new URL(present(worker.urls.proxy, "a backhaul's URL")).host;
    const machine = (id: string, region: string, addr: string | undefined) => [
      [
        'INSERT INTO machines (id, app, state, private_addr, region, host_id) VALUES (?, ?, ?, ?, ?, ?)',
        [id, 'web', 'started', present(addr, `${id}'s address`), region, `worker-${region}`],
      ],
      [
        'INSERT INTO services (machine_id, internal_port, app, ports) VALUES (?, ?, ?, ?)',
        [id, 8080, 'web', httpService],
      ],
    ];
    // Written in ams only: fra's edge must learn all of it through gossip.
    await writers.ams.transaction([
      "INSERT INTO regions (code, name, lat, lon) VALUES ('ams', 'Amsterdam', 52.37, 4.9)",
      "INSERT INTO regions (code, name, lat, lon) VALUES ('fra', 'Frankfurt', 50.11, 8.68)",
      "INSERT INTO regions (code, name, lat, lon) VALUES ('syd', 'Sydney', -33.87, 151.21)",
      "INSERT INTO hosts (id, region, role) VALUES ('edge-ams', 'ams', 'edge')",
      "INSERT INTO hosts (id, region, role) VALUES ('edge-fra', 'fra', 'edge')",
      [
        'INSERT INTO hosts (id, region, backhaul_addr) VALUES (?, ?, ?)',
        ['worker-ams', 'ams', backhaulOf(workerAms)],
      ],
      [
        'INSERT INTO hosts (id, region, backhaul_addr) VALUES (?, ?, ?)',
        ['worker-fra', 'fra', backhaulOf(workerFra)],
      ],
      [
        'INSERT INTO hosts (id, region, backhaul_addr) VALUES (?, ?, ?)',
        ['worker-syd', 'syd', backhaulOf(workerSyd)],
      ],
      "INSERT INTO apps (name) VALUES ('web')",
      ...machine('ams-1', 'ams', amsMachine?.addr),
      ...machine('fra-1', 'fra', fraMachine?.addr),
      ...machine('syd-1', 'syd', sydMachine?.addr),
    ] as Parameters<CorrosionClient['transaction']>[0]);
  }, 60_000);

  afterAll(async () => {
    await fleet?.stop();
  });

  const servedBy = async (edge: string): Promise<string> => {
    const answer = await request(edge, { headers: { host: 'web.fleet.test' } });
    const text = await answer.body.text();
    return answer.statusCode === 200
      ? (JSON.parse(text) as { name: string }).name
      : `${answer.statusCode}`;
  };

  /** Asks `edge` until `count` answers in a row come from `machine` (bounded). */
  const servedInARow = (edge: string, machine: string, count = 5) => {
    let streak = 0;
    return until(`${count} answers in a row from ${machine} at ${edge}`, async () => {
      streak = (await servedBy(edge)) === machine ? streak + 1 : 0;
      return streak >= count ? machine : undefined;
    });
  };

  it('serves each request in the region it entered', async () => {
    expect(await servedInARow(edges.ams, 'ams-1')).toBe('ams-1');
    expect(await servedInARow(edges.fra, 'fra-1')).toBe('fra-1');
  });

  it('leaves for the closest other region when the local machine stops, and comes back', async () => {
    // Written in fra: the ams edge learns it through gossip.
    await writers.fra.transaction(["UPDATE machines SET state = 'stopped' WHERE id = 'ams-1'"]);
    expect(await servedInARow(edges.ams, 'fra-1', 10)).toBe('fra-1');
    await writers.fra.transaction(["UPDATE machines SET state = 'started' WHERE id = 'ams-1'"]);
    expect(await servedInARow(edges.ams, 'ams-1')).toBe('ams-1');
  });

  it('goes as far as it must when the closest regions have nothing', async () => {
    await writers.ams.transaction([
      "UPDATE machines SET state = 'stopped' WHERE id IN ('ams-1', 'fra-1')",
    ]);
    try {
      expect(await servedInARow(edges.fra, 'syd-1')).toBe('syd-1');
    } finally {
      await writers.ams.transaction([
        "UPDATE machines SET state = 'started' WHERE id IN ('ams-1', 'fra-1')",
      ]);
    }
    expect(await servedInARow(edges.fra, 'fra-1')).toBe('fra-1');
  });
});
