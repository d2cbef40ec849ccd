import { CorrosionClient } from '@fleet/corrosion-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Fleet, startFleet } from './fleet.js';

const workers = 10;
const machines = 1000;
const clients = 50;

// Seed 002: thousands of parallel creates must spread over the workers, not pile onto the one
// that looked emptiest when they all read the same counts. Real corrosion, flyd and flaps;
// `skip_launch` so no machine process is spawned.
describe('placement under 50 parallel clients', () => {
  let fleet: Fleet;

  beforeAll(async () => {
    fleet = await startFleet({
      workers: Array.from({ length: workers }, (_, i) => ({ hostId: `w${i}`, region: 'ams' })),
      flydArgs: ['--memory-mb', '1000000'],
    });
    const created = await fleet.call('POST', '/v1/apps', {
      app_name: 'crowd',
      org_slug: 'personal',
    });
    expect(created.status).toBe(201);
  }, 120_000);
  afterAll(async () => {
    await fleet?.stop();
  });

  it(`${machines} machines of one app over ${workers} workers: none holds more than one above its share`, async () => {
    let next = 0;
    const failures: string[] = [];
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (next < machines) {
          next++;
          const answer = await fleet.call('POST', '/v1/apps/crowd/machines', {
            region: 'ams',
            skip_launch: true,
            config: { image: 'hello' },
          });
          if (answer.status !== 200) failures.push(JSON.stringify(answer.body));
        }
      }),
    );
    expect(failures).toEqual([]);
    const client = new CorrosionClient({ url: fleet.corrosion });
    const perWorker = await client.queryObjects<{ host_id: string; n: number }>(
      "SELECT host_id, count(*) AS n FROM machines WHERE app = 'crowd' GROUP BY host_id ORDER BY host_id",
    );
    await client.close();
    expect(perWorker).toHaveLength(workers);
    expect(perWorker.reduce((sum, row) => sum + row.n, 0)).toBe(machines);
    const share = machines / workers;
    expect(Math.max(...perWorker.map((row) => row.n))).toBeLessThanOrEqual(share + 1);
  }, 120_000);
});
