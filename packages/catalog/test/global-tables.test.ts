import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GlobalTables } from '../src/global-tables.js';
import { Guarded } from '../src/shard.js';
import { Topology } from '../src/topology.js';
import { startAgent } from './agent.js';
import { quiet } from './fixtures.js';

// A hosts or regions update its lock refused is not dropped, and not replayed either (it could
// undo a newer change of the same row): the table is read again whole from corrosion. Shown with
// a real writer holding the global lock past its timeout and a real corrosion agent.
describe('global tables', () => {
  let agent: Awaited<ReturnType<typeof startAgent>>;

  beforeAll(async () => {
    agent = await startAgent();
    await agent.client.transaction([
      [
        'INSERT INTO hosts (id, region, role, backhaul_addr, status) VALUES (?, ?, ?, ?, ?)',
        ['h1', 'ams', 'worker', '10.0.0.1:4280', 'ready'],
      ],
    ]);
  });
  afterAll(async () => {
    await agent?.stop();
  });

  it('reads a table again from corrosion when its lock refused an update', async () => {
    const topology = new Topology('ams');
    const guarded = new Guarded('catalog-global', topology, {
      writeTimeoutMs: 100,
      logger: quiet,
    });
    const failed: string[] = [];
    const tables = new GlobalTables(
      guarded,
      { resyncAttemptsMax: 3, queryTimeoutMs: 5_000, bufferedChangesMax: 100 },
      {
        guardRow: (_table, _cells, apply) => apply(),
        failed: (_table, label) => failed.push(label),
        gaveUp: (table) => failed.push(`gave up ${table}`),
      },
    );
    let release!: () => void;
    const holding = guarded.write(
      'test-hold',
      {},
      () =>
        new Promise<void>((resolve) => {
          release = resolve;
        }),
    );
    await tables.apply('hosts', 'upsert', ['h1', 'ams', 'worker', '10.0.0.1:4280', 'ready']);
    expect(failed).toEqual(['apply-hosts']);
    release();
    await holding;
    expect(topology.hosts.get('h1')?.known ?? false).toBe(false); // the update did not apply
    tables.pump(agent.client);
    const host = await until(
      'host h1 known',
      () => topology.hosts.get('h1'),
      (entry) => entry?.known === true,
    );
    expect(host).toMatchObject({ known: true, backhaulAddr: '10.0.0.1:4280', region: 'ams' });
    expect(failed).toEqual(['apply-hosts']);
  });
});
