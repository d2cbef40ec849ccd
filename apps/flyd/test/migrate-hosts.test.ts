import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CorrosionClient } from '@fleet/corrosion-client';
import { type ServerProcess, serverMain, startServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callExpecting } from './expect-status.js';
import { call, FlydFixture, hello } from './flyd-fixture.js';

// Two workers that are two hosts as far as state goes: each flyd writes to its own corrosion
// agent, and the agents replicate by gossip. A migrate hands the machine's and the volume's rows
// from one agent's writer to the other's; both agents must end with the target's rows (a write
// concurrent with the source's last one would tie and be decided by value: "src" beats "dst").
// The target waits for the source's rows before writing (Publisher.awaitRow); on loopback gossip
// is faster than a migrate, so this test shows the hand-over across agents, not that race.
describe('a migrate between workers with their own corrosion agents', () => {
  const source = new FlydFixture(['--host-id', 'src', '--region', 'ams']);
  const target = new FlydFixture(['--host-id', 'dst', '--region', 'ams']);
  const agents: ServerProcess[] = [];
  const clients: CorrosionClient[] = [];

  const startAgent = async (name: string, bootstrap: string[]) => {
    const keyFile = join(source.dir, 'fleet.key');
    writeFileSync(keyFile, 'test-fleet-key-0123456789abcdef');
    const agent = await startServerProcess({
      command: process.execPath,
      args: [
        serverMain('@fleet/corrosion'),
        ...['agent', '--db', join(source.dir, `${name}.db`), '--api-addr', '127.0.0.1:0'],
        ...['--gossip-addr', '127.0.0.1:0', '--gossip-key-file', keyFile],
        ...['--bootstrap', bootstrap.join(','), '--probe-interval-ms', '100'],
        ...['--sync-interval-ms', '300'],
      ],
      listeners: ['api', 'gossip'],
      env: { ...process.env, LOG_LEVEL: 'error' },
    });
    agents.push(agent);
    clients.push(
      new CorrosionClient({ url: present(agent.urls.api, 'agent.urls.api'), timeoutMs: 5_000 }),
    );
    return agent;
  };

  beforeAll(async () => {
    const first = await startAgent('a', []);
    const second = await startAgent('b', [
      present(first.urls.gossip, 'first.urls.gossip').replace('udp://', ''),
    ]);
    source.useCorrosion(first);
    target.useCorrosion(second);
    await source.startFlyd();
    await target.startFlyd();
  });
  afterAll(async () => {
    await target.close();
    await source.close();
    for (const client of clients) await client.close();
    for (const agent of agents.reverse()) await agent.stop();
  });

  it('leaves every agent with the target as the owner of the machine and its volume', async () => {
    const sourceApi = present(source.flyd?.urls.api, 'the source flyd URL');
    const targetApi = present(target.flyd?.urls.api, 'the target flyd URL');
    const volume = (
      await callExpecting(sourceApi, 'POST', '/v1/volumes', { app: 'hosts', name: 'data' })
    ).body.id as string;
    const created = await callExpecting(sourceApi, 'POST', '/v1/machines', {
      app: 'hosts',
      config: { ...hello, mounts: [{ volume, path: '/data' }] },
    });
    const id = created.body.id as string;
    await callExpecting(sourceApi, 'GET', `/v1/machines/${id}/wait?state=started&timeout=15`);
    const moved = await call(sourceApi, 'POST', `/v1/machines/${id}/migrate`, {
      target_url: targetApi,
      target_host_id: 'dst',
    });
    expect(moved).toMatchObject({ status: 200, body: { host_id: 'dst' } });
    for (const client of clients) {
      await until(`every agent to show ${id} and ${volume} on dst`, async () => {
        const [machine] = await client.queryObjects<{ host_id: string; state: string }>([
          'SELECT host_id, state FROM machines WHERE id = ?',
          [id],
        ]);
        const [row] = await client.queryObjects<{ host_id: string; attached: string }>([
          'SELECT host_id, attached_machine_id AS attached FROM volumes WHERE id = ?',
          [volume],
        ]);
        return machine?.host_id === 'dst' &&
          machine.state === 'started' &&
          row?.host_id === 'dst' &&
          row.attached === id
          ? true
          : undefined;
      });
    }
  }, 60_000);
});
