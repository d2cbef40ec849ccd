import { join } from 'node:path';
import type { ServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, readLines, startAgent, tempDir } from './agent.js';

// Answers whose shape real Corrosion fixes (corro-api-types), checked field by field.
describe("Corrosion's answer shapes", () => {
  let agent: ServerProcess;
  let url: string;

  beforeAll(async () => {
    agent = await startAgent(join(tempDir(), 'state.db'));
    url = present(agent.urls.api, "the agent's API url");
  });
  afterAll(async () => {
    await agent.stop();
  });

  it('a blob is an array of its bytes (an untagged SqliteValue) in queries, subscriptions and updates', async () => {
    const query = await post(`${url}/v1/queries`, "SELECT x'00ff10' AS b");
    expect((await readLines(query, 3)).slice(0, 2)).toEqual([
      { columns: ['b'] },
      { row: [1, [[0, 255, 16]]] },
    ]);
    const updates = await fetch(`${url}/v1/updates/machines`, { method: 'POST' });
    const subscription = await post(
      `${url}/v1/subscriptions`,
      "SELECT id, CAST(id AS BLOB) AS raw FROM machines WHERE app = 'blobs'",
    );
    await post(`${url}/v1/transactions`, ["INSERT INTO machines (id, app) VALUES ('b1', 'blobs')"]);
    expect(await readLines(subscription, 3)).toEqual([
      { columns: ['id', 'raw'] },
      { eoq: expect.objectContaining({ time: expect.any(Number) }) },
      { change: ['insert', 1, ['b1', [98, 49]], 1] },
    ]);
    expect(await readLines(updates, 1)).toEqual([{ notify: ['update', ['b1']] }]);
  });

  it('an empty transaction is a 400 with one error result and no version', async () => {
    const response = await post(`${url}/v1/transactions`, []);
    expect(response.status).toBe(400);
    const body = await response.json();
    expect(body).toMatchObject({
      results: [{ error: 'at least 1 statement is required' }],
      time: 0,
      version: null,
      actor_id: expect.stringMatching(/^[0-9a-f]{32}$/),
    });
  });

  it('a statement failing in SQLite is a 500 with its error, and nothing of the transaction stays', async () => {
    for (const failing of [
      'INSERT INTO apps (name) VALUES (NULL)',
      'INSERT INTO nowhere VALUES (1)',
    ]) {
      const response = await post(`${url}/v1/transactions`, [
        "INSERT INTO apps (name) VALUES ('kept-out')",
        failing,
      ]);
      expect(response.status).toBe(500);
      const body = (await response.json()) as { results: { error: string }[] };
      expect(body).toMatchObject({ time: 0, version: null, code: 'CORRO_ERR_TRANSACTION_FAILED' });
      expect(body.results).toHaveLength(1);
      expect(present(body.results[0], 'the first result').error).toMatch(
        /statement 1: .*(NOT NULL|no such table)/,
      );
    }
    const rows = await post(`${url}/v1/queries`, "SELECT name FROM apps WHERE name = 'kept-out'");
    expect((await rows.text()).trim().split('\n')).toHaveLength(2); // columns and eoq only
  });

  it('a successful transaction answers results with rows_affected and time, version and actor_id', async () => {
    const response = await post(`${url}/v1/transactions`, [
      "INSERT INTO apps (name) VALUES ('shape')",
    ]);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      results: [{ rows_affected: 1, time: expect.any(Number) }],
      time: expect.any(Number),
      version: expect.any(Number),
      actor_id: expect.stringMatching(/^[0-9a-f]{32}$/),
    });
  });

  it('health is {"response": {gaps, members, p99_lag, queue_size}}; Fleet\'s fuller view is /v1/status', async () => {
    const health = await fetch(`${url}/v1/health`);
    expect(Object.keys(((await health.json()) as { response: object }).response).sort()).toEqual([
      'gaps',
      'members',
      'p99_lag',
      'queue_size',
    ]);
    const status = await fetch(`${url}/v1/status`);
    expect(status.status).toBe(200);
    expect(await status.json()).toMatchObject({
      actor_id: expect.stringMatching(/^[0-9a-f]{32}$/),
      version: expect.any(Number),
      gaps: 0,
    });
  });
});
