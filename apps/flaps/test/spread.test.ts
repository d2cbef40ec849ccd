import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CorrosionClient } from '@fleet/corrosion-client';
import { type ServerProcess, startServerProcess } from '@fleet/service';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const main = (app: string) => join(here, '..', '..', app, 'dist', 'main.js');
const env = { ...process.env, LOG_LEVEL: 'warn' };
const workers = 10;
const machines = 1000;
const clients = 50;

// Seed 002: thousands of parallel creates must spread over the workers, not pile onto the one
// that looked emptiest when they all read the same counts. Real corrosion, flyd and flaps;
// `skip_launch` so no machine process is spawned.
describe('placement under 50 parallel clients', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-spread-'));
  const servers: ServerProcess[] = [];
  let api: string;
  let corrosion: string;
  const start = async (app: string, args: string[]) => {
    const server = await startServerProcess({
      command: process.execPath,
      args: [main(app), ...args],
      listeners: ['api'],
      env,
    });
    servers.push(server);
    return server.urls.api!;
  };

  beforeAll(async () => {
    corrosion = await start('corrosion', [
      'agent',
      '--db',
      join(dir, 'c.db'),
      '--api-addr',
      '127.0.0.1:0',
    ]);
    await Promise.all(
      Array.from({ length: workers }, (_, i) =>
        start('flyd', [
          ...['--listen', '127.0.0.1:0', '--data-dir', join(dir, `flyd-${i}`)],
          ...['--corrosion-url', corrosion, '--token', 'flyd-t0k', '--host-id', `w${i}`],
          ...['--region', 'ams', '--memory-mb', '1000000'],
        ]),
      ),
    );
    api = await start('flaps', [
      ...['--listen', '127.0.0.1:0', '--corrosion-url', corrosion],
      ...['--token', 'api-t0k', '--flyd-token', 'flyd-t0k'],
    ]);
    const created = await fetch(`${api}/v1/apps`, {
      method: 'POST',
      headers: { authorization: 'Bearer api-t0k', 'content-type': 'application/json' },
      body: JSON.stringify({ app_name: 'crowd', org_slug: 'personal' }),
    });
    expect(created.status).toBe(201);
  }, 60_000);
  afterAll(async () => {
    for (const server of servers.reverse()) await server.stop();
  });

  it(`${machines} machines of one app over ${workers} workers: none holds more than one above its share`, async () => {
    let next = 0;
    const failures: string[] = [];
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (next < machines) {
          next++;
          const response = await fetch(`${api}/v1/apps/crowd/machines`, {
            method: 'POST',
            headers: { authorization: 'Bearer api-t0k', 'content-type': 'application/json' },
            body: JSON.stringify({ region: 'ams', skip_launch: true, config: { image: 'hello' } }),
          });
          if (response.status !== 200) failures.push(await response.text());
          else await response.arrayBuffer();
        }
      }),
    );
    expect(failures).toEqual([]);
    const client = new CorrosionClient({ url: corrosion });
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
