import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CorrosionClient } from '@fleet/corrosion-client';
import { type ServerProcess, serverMain, startServerProcess } from '@fleet/service';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startMachine } from './relay-fixture.js';

const here = dirname(fileURLToPath(import.meta.url));
const corrosionMain = serverMain('@fleet/corrosion');
const proxyMain = join(here, '..', 'dist', 'main.js');
const quiet = { ...process.env, LOG_LEVEL: 'error' };
const httpService = JSON.stringify([{ port: 80, handlers: ['http'] }]);

// Two regions, each with its own corrosion agent (one gossip cluster), an edge and a worker's
// backhaul, and a third region far away: a request is served in the region it enters, leaves it
// only when no local machine can take it — for the closest other region, by the regions'
// distance — and comes back when the local machine does. Rows written in one region route in
// the other.
describe('two regions', () => {
  let dir: string;
  const processes: ServerProcess[] = [];
  const servers: Server[] = [];
  const clients: CorrosionClient[] = [];
  let edges: { ams: string; fra: string };

  const start = async (args: string[], listeners: string[]) => {
    const started = await startServerProcess({
      command: process.execPath,
      args,
      listeners,
      env: quiet,
    });
    processes.push(started);
    return started;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-regions-'));
    const keyFile = join(dir, 'fleet.key');
    writeFileSync(keyFile, 'two-regions-fleet-key-0123456789');
    const [gossipAms, gossipFra] = [await freePort(), await freePort()];
    const agent = (name: string, gossip: number, bootstrap: string[]) =>
      start(
        [
          ...[corrosionMain, 'agent', '--db', join(dir, `${name}.db`), '--api-addr', '127.0.0.1:0'],
          ...['--gossip-addr', `127.0.0.1:${gossip}`, '--gossip-key-file', keyFile],
          ...(bootstrap.length > 0 ? ['--bootstrap', bootstrap.join(',')] : []),
        ],
        ['api'],
      );
    const ams = await agent('ams', gossipAms, []);
    const fra = await agent('fra', gossipFra, [`127.0.0.1:${gossipAms}`]);
    const proxy = (corrosion: ServerProcess, region: string, args: string[]) =>
      start(
        [
          ...[proxyMain, '--listen', '127.0.0.1:0', '--corrosion-url', corrosion.urls.api!],
          ...['--domain', 'fleet.test', '--region', region, '--fleet-key-file', keyFile, ...args],
          ...['--state-dir', join(dir, `proxy-${processes.length}`)],
        ],
        ['proxy', 'admin'],
      );
    const backhaul = (corrosion: ServerProcess, region: string, host: string) =>
      proxy(corrosion, region, ['--mode', 'backhaul', '--host-id', host]);
    const [workerAms, workerFra, workerSyd] = [
      await backhaul(ams, 'ams', 'worker-ams'),
      await backhaul(fra, 'fra', 'worker-fra'),
      await backhaul(fra, 'syd', 'worker-syd'),
    ];
    const edgeAms = await proxy(ams, 'ams', ['--host-id', 'edge-ams']);
    const edgeFra = await proxy(fra, 'fra', ['--host-id', 'edge-fra']);
    edges = { ams: edgeAms.urls.proxy!, fra: edgeFra.urls.proxy! };
    const machines = await Promise.all(['ams-1', 'fra-1', 'syd-1'].map((id) => startMachine(id)));
    servers.push(...machines.map((machine) => machine.server));
    const amsClient = new CorrosionClient({ url: ams.urls.api! });
    const fraClient = new CorrosionClient({ url: fra.urls.api! });
    clients.push(amsClient, fraClient);
    const backhaulOf = (worker: ServerProcess) => new URL(worker.urls.proxy!).host;
    const machine = (id: string, region: string, addr: string) => [
      [
        'INSERT INTO machines (id, app, state, private_addr, region, host_id) VALUES (?, ?, ?, ?, ?, ?)',
        [id, 'web', 'started', addr, region, `worker-${region}`],
      ],
      [
        'INSERT INTO services (machine_id, internal_port, app, ports) VALUES (?, ?, ?, ?)',
        [id, 8080, 'web', httpService],
      ],
    ];
    // Written in ams only: fra's edge must learn all of it through gossip.
    await amsClient.transaction([
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
      ...machine('ams-1', 'ams', machines[0]!.addr),
      ...machine('fra-1', 'fra', machines[1]!.addr),
      ...machine('syd-1', 'syd', machines[2]!.addr),
    ] as Parameters<CorrosionClient['transaction']>[0]);
  }, 60_000);

  afterAll(async () => {
    for (const client of clients) await client.close();
    for (const started of processes.reverse()) await started.stop();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const servedBy = async (edge: string): Promise<string> => {
    const answer = await request(edge, { headers: { host: 'web.fleet.test' } });
    const text = await answer.body.text();
    return answer.statusCode === 200
      ? (JSON.parse(text) as { name: string }).name
      : `${answer.statusCode}`;
  };

  /** Asks `edge` until `count` answers in a row come from `machine` (bounded). */
  const until = async (edge: string, machine: string, count = 5) => {
    const deadline = Date.now() + 30_000;
    let streak = 0;
    let last = '';
    while (streak < count) {
      last = await servedBy(edge);
      streak = last === machine ? streak + 1 : 0;
      if (Date.now() > deadline)
        throw new Error(`${edge} kept answering from ${last}, not ${machine}`);
      if (streak === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return last;
  };

  it('serves each request in the region it entered', async () => {
    expect(await until(edges.ams, 'ams-1')).toBe('ams-1');
    expect(await until(edges.fra, 'fra-1')).toBe('fra-1');
  });

  it('leaves for the closest other region when the local machine stops, and comes back', async () => {
    // Written in fra: the ams edge learns it through gossip.
    await clients[1]!.transaction(["UPDATE machines SET state = 'stopped' WHERE id = 'ams-1'"]);
    expect(await until(edges.ams, 'fra-1', 10)).toBe('fra-1');
    await clients[1]!.transaction(["UPDATE machines SET state = 'started' WHERE id = 'ams-1'"]);
    expect(await until(edges.ams, 'ams-1')).toBe('ams-1');
  });

  it('goes as far as it must when the closest regions have nothing', async () => {
    await clients[0]!.transaction([
      "UPDATE machines SET state = 'stopped' WHERE id IN ('ams-1', 'fra-1')",
    ]);
    try {
      expect(await until(edges.fra, 'syd-1')).toBe('syd-1');
    } finally {
      await clients[0]!.transaction([
        "UPDATE machines SET state = 'started' WHERE id IN ('ams-1', 'fra-1')",
      ]);
    }
    expect(await until(edges.fra, 'fra-1')).toBe('fra-1');
  });
});
