import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, readLines, startAgent, tempDir } from './agent.js';

describe('corrosion API: updates, table stats, subscriptions details, limits', () => {
  let agent: ServerProcess;
  let api: string;

  const databasePath = join(tempDir(), 'state.db');

  beforeAll(async () => {
    agent = await startAgent(databasePath, ['--route-concurrency-max', '4']);
    api = present(agent.urls.api, "the agent's API url");
  });
  afterAll(async () => {
    await agent.stop();
  });

  it('streams the primary keys that change in a table, and refuses an unknown table', async () => {
    const response = await fetch(`${api}/v1/updates/machines`, { method: 'POST' });
    expect(response.headers.get('content-type')).toBe('application/x-ndjson');
    await post(`${api}/v1/transactions`, [
      "INSERT INTO machines (id, app) VALUES ('u1', 'web')",
      "INSERT INTO apps (name) VALUES ('web')",
    ]);
    await post(`${api}/v1/transactions`, ["DELETE FROM machines WHERE id = 'u1'"]);
    expect(await readLines(response, 2)).toEqual([
      { notify: ['update', ['u1']] },
      { notify: ['delete', ['u1']] },
    ]);
    const unknown = await fetch(`${api}/v1/updates/nope`, { method: 'POST' });
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({ code: 'CORRO_ERR_BAD_STATEMENT' });
  });

  it("backs up to a new file by absolute path only: never over a file, the agent's database among them", async () => {
    const dir = tempDir();
    const backup = (path: string) => post(`${api}/v1/backup`, { path });
    const written = await backup(join(dir, 'copy.db'));
    expect(written.status).toBe(200);
    expect(existsSync(join(dir, 'copy.db'))).toBe(true);
    const refused = [
      ['copy-here.db', 'is not absolute'],
      [join(dir, 'copy.db'), 'exists: a backup goes to a new file'],
      [databasePath, 'exists: a backup goes to a new file'],
      [join(dir, 'no', 'such', 'dir.db'), 'cannot write a backup to'],
    ];
    for (const [path, why] of refused) {
      const answer = await backup(path as string);
      expect(answer.status, path).toBe(400);
      expect(await answer.json()).toMatchObject({
        code: 'CORRO_ERR_BACKUP',
        error: expect.stringContaining(why as string),
      });
    }
    expect(existsSync(join(dir, 'no'))).toBe(false);
    // The agent's own database is untouched and serving.
    expect(
      (await post(`${api}/v1/transactions`, ["INSERT INTO apps (name) VALUES ('b')"])).status,
    ).toBe(200);
  });

  it('counts rows in Corrosion shape and names the tables it does not know', async () => {
    await post(`${api}/v1/transactions`, ["INSERT INTO regions (code) VALUES ('iad'), ('ams')"]);
    const response = await post(`${api}/v1/table_stats`, { tables: ['regions', 'nope'] });
    expect(await response.json()).toEqual({ total_row_count: 2, invalid_tables: ['nope'] });
    expect((await post(`${api}/v1/table_stats`, { tables: 'regions' })).status).toBe(400);
  });

  it('skip_rows starts with the end of query; the same query gets the same id', async () => {
    await post(`${api}/v1/transactions`, ["INSERT INTO machines (id, app) VALUES ('s1', 'skip')"]);
    const sql = "SELECT id FROM machines WHERE app = 'skip'";
    const unclear = await post(`${api}/v1/subscriptions?skip_rows=maybe`, sql);
    expect(unclear.status).toBe(400); // not a quiet `false`
    const first = await post(`${api}/v1/subscriptions?skip_rows=true`, sql);
    const lines = await readLines(first, 2);
    expect(lines[0]).toEqual({ columns: ['id'] });
    expect(lines[1]).toMatchObject({ eoq: { change_id: 0 } });
    const second = await post(`${api}/v1/subscriptions`, sql);
    expect(second.headers.get('corro-query-id')).toBe(first.headers.get('corro-query-id'));
    await second.body?.cancel();
  });

  it('answers 503 past the per-route concurrency limit, and recovers', async () => {
    const streams = await Promise.all(
      Array.from({ length: 4 }, () => fetch(`${api}/v1/updates/machines`, { method: 'POST' })),
    );
    const refused = await fetch(`${api}/v1/updates/machines`, { method: 'POST' });
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ code: 'CORRO_ERR_OVERLOADED' });
    for (const stream of streams) await stream.body?.cancel();
    // The agent sees the cancelled streams close on its own time: poll (bounded) until a new
    // stream is taken again, rather than sleeping and hoping it was long enough.
    await expect
      .poll(
        async () => {
          const again = await fetch(`${api}/v1/updates/machines`, { method: 'POST' });
          await again.body?.cancel();
          return again.status;
        },
        { timeout: 10_000, interval: 50 },
      )
      .toBe(200);
  });

  it('health turns to the failure status when a threshold asked for is passed', async () => {
    const healthy = await fetch(`${api}/v1/health?gaps=0&max_queue=0&p99_lag=0.5`);
    expect(healthy.status).toBe(200);
    expect(await healthy.json()).toMatchObject({ response: { gaps: 0, queue_size: 0 } });
    const strict = await fetch(`${api}/v1/health?gaps=-1`);
    expect(strict.status).toBe(503);
    expect(await strict.json()).toMatchObject({ response: { gaps: 0 } });
    const teapot = await fetch(`${api}/v1/health?gaps=-1&failure_status=418`);
    expect(teapot.status).toBe(418);
    for (const query of ['gaps=many', 'max_queue=1.5', 'failure_status=99', 'p99_lag=']) {
      const bad = await fetch(`${api}/v1/health?${query}`);
      expect(bad.status).toBe(400);
      expect(await bad.json()).toMatchObject({ code: 'CORRO_ERR_BAD_QUERY' });
    }
  });
});
