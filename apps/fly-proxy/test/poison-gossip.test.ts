import type { CorrosionClient } from '@fleet/corrosion-client';
import type { ServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GossipFleet, gossipFleet, httpService } from './gossip-fleet.js';

type Statement = Parameters<CorrosionClient['transaction']>[0][number];

/** Rows a careless or broken writer could gossip for app `poison`: each one the catalog refuses. */
const poisonRows: Statement[] = [
  "INSERT INTO apps (name) VALUES ('poison')",
  [
    'INSERT INTO machines (id, app, state, private_addr, region, host_id) VALUES (?, ?, ?, ?, ?, ?)',
    ['poison-1', 'poison', 'started', '127.0.0.1:1', 'ams', ''],
  ],
  ...[
    'not json',
    '{"port": 80}',
    '[7]',
    JSON.stringify([{ port: 80, handlers: ['http'] }]).repeat(2_000), // 100 KB of not-one-array
  ].map(
    (ports, index): Statement => [
      'INSERT INTO services (machine_id, internal_port, app, ports) VALUES (?, ?, ?, ?)',
      ['poison-1', 9000 + index, 'poison', ports],
    ],
  ),
  ...['{"type": "bananas"}', '{"type": "requests", "hard_limit": -5}', '[]'].map(
    (concurrency, index): Statement => [
      'INSERT INTO services (machine_id, internal_port, app, ports, concurrency) VALUES (?, ?, ?, ?, ?)',
      ['poison-1', 9100 + index, 'poison', httpService, concurrency],
    ],
  ),
  "INSERT INTO regions (code, name, lat, lon) VALUES ('zzz', 'Nowhere', 'north', 'east')",
];

// Seed 002: a bad update gossiped to every proxy of the fleet at once took all of them down. Here
// a peer's corrosion writes rows the catalog cannot use — malformed and hostile services configs,
// a region without coordinates — in the same transaction as a good change, and it reaches three
// edges, each on its own agent of one gossip cluster. Every edge stays up, keeps serving the
// other app without a single error while the rows arrive, applies the good change, and counts
// what it refused. (The seed's lock re-entry is reproduced against the catalog itself in
// packages/catalog/test/quarantine.test.ts: no row can make this catalog re-enter its lock.)
describe('a poison update gossiped to three proxies', () => {
  let fleet: GossipFleet | undefined;
  let writer: CorrosionClient;
  let edges: ServerProcess[] = [];

  beforeAll(async () => {
    const poisoned = gossipFleet('poison');
    fleet = poisoned;
    const first = await poisoned.agent('agent-0');
    const agents = [
      first,
      await poisoned.agent('agent-1', first),
      await poisoned.agent('agent-2', first),
    ];
    edges = [];
    for (const agent of agents) edges.push(await poisoned.proxy(agent, ['--region', 'ams']));
    const [web1, web2] = await Promise.all(['web-1', 'web-2'].map((id) => poisoned.machine(id)));
    writer = poisoned.client(present(agents[2], 'the third agent'));
    await writer.transaction([
      "INSERT INTO regions (code, name, lat, lon) VALUES ('ams', 'Amsterdam', 52.37, 4.9)",
      "INSERT INTO apps (name) VALUES ('web')",
      [
        'INSERT INTO machines (id, app, state, private_addr, region) VALUES (?, ?, ?, ?, ?)',
        ['web-1', 'web', 'started', present(web1, 'web-1').addr, 'ams'],
      ],
      [
        'INSERT INTO services (machine_id, internal_port, app, ports) VALUES (?, ?, ?, ?)',
        ['web-1', 8080, 'web', httpService],
      ],
    ]);
    // The good change that rides with the poison: a second machine for `web`.
    poisonRows.push(
      [
        'INSERT INTO machines (id, app, state, private_addr, region) VALUES (?, ?, ?, ?, ?)',
        ['web-2', 'web', 'started', present(web2, 'web-2').addr, 'ams'],
      ],
      [
        'INSERT INTO services (machine_id, internal_port, app, ports) VALUES (?, ?, ?, ?)',
        ['web-2', 8080, 'web', httpService],
      ],
    );
  }, 60_000);

  afterAll(async () => {
    await fleet?.stop();
  });

  const ask = async (edge: ServerProcess, host: string) => {
    const answer = await request(present(edge.urls.proxy, "an edge's URL"), { headers: { host } });
    const text = await answer.body.text();
    return { status: answer.statusCode, text };
  };

  /** The sum of a metric's samples on an edge's /metrics. */
  const metric = async (edge: ServerProcess, name: string) => {
    const text = await (await fetch(`${edge.urls.admin}/metrics`)).text();
    return text
      .split('\n')
      .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  };

  it('keeps every edge serving the other app without an error, and applies the good change', async () => {
    // Every edge serves `web` before the poison arrives.
    for (const edge of edges)
      await expect
        .poll(async () => (await ask(edge, 'web.fleet.test')).status, { timeout: 30_000 })
        .toBe(200);

    const failures: string[] = [];
    /** The machines each edge was served by. */
    const served: Set<string>[] = [];
    let running = true;
    const traffic = edges.map(async (edge) => {
      const names = new Set<string>();
      served.push(names);
      while (running) {
        try {
          const { status, text } = await ask(edge, 'web.fleet.test');
          if (status === 200) names.add(JSON.parse(text).name);
          else failures.push(`${edge.urls.proxy}: ${status} ${text}`);
        } catch (error) {
          failures.push(`${edge.urls.proxy}: ${(error as Error).message}`);
        }
      }
    });
    try {
      await writer.transaction(poisonRows);
      // The good change reaches every edge through gossip: both machines serve.
      await expect
        .poll(() => served.every((names) => names.has('web-2')), {
          timeout: 30_000,
        })
        .toBe(true);
    } finally {
      running = false;
      await Promise.all(traffic);
    }
    expect(failures).toEqual([]);

    for (const edge of edges) {
      // The refused rows were counted, and the edge says it is fine.
      await expect.poll(() => metric(edge, 'catalog_rows_rejected_total')).toBeGreaterThan(0);
      const status = await (await fetch(`${edge.urls.admin}/status`)).json();
      expect(status).toMatchObject({ fresh: true, catalog: { quarantined: 0 } });
      expect(await metric(edge, 'proxy_unhandled_rejections_total')).toBe(0);
      // The poisoned app answers quickly with the proxy's own error, never hangs.
      const poisoned = await ask(edge, 'poison.fleet.test');
      expect(poisoned.status).toBeGreaterThanOrEqual(400);
    }
  }, 90_000);
});
