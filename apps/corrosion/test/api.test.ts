import { join } from 'node:path';
import { CorrosionClient, CorrosionError } from '@fleet/corrosion-client';
import type { ServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, startAgent, tempDir } from './agent.js';

// The agent's API against a real process and a real SQLite file, spoken to as Corrosion clients do.
describe('corrosion agent API', () => {
  let agent: ServerProcess;
  let url: string;
  let client: CorrosionClient;

  beforeAll(async () => {
    agent = await startAgent(join(tempDir(), 'state.db'));
    url = present(agent.urls.api, "the agent's API url");
    client = new CorrosionClient({ url });
  });
  afterAll(async () => {
    await client.close();
    await agent.stop();
  });

  it('runs all four statement forms in one transaction and counts versions', async () => {
    const answer = await client.transaction([
      "INSERT INTO apps (name) VALUES ('one')",
      ['INSERT INTO apps (name, org) VALUES (?, ?)', ['two', 'acme']],
      { query: 'UPDATE apps SET org = ? WHERE name = ?', params: ['acme', 'one'] },
      {
        query: 'INSERT INTO regions (code, name) VALUES (:code, :name)',
        named_params: { code: 'ams', name: 'Amsterdam' },
      },
    ]);
    expect(answer.results.map((result) => result.rows_affected)).toEqual([1, 1, 1, 1]);
    expect(answer.actor_id).toMatch(/^[0-9a-f]{32}$/);
    const next = await client.transaction(["UPDATE apps SET network = 'n2' WHERE name = 'two'"]);
    expect(next.version).toBe((answer.version ?? 0) + 1);
    const noop = await client.transaction(["DELETE FROM apps WHERE name = 'nobody'"]);
    expect(noop.version).toBeNull();
  });

  it('rolls the whole transaction back when one statement fails', async () => {
    await expect(
      client.transaction([
        "INSERT INTO apps (name) VALUES ('three')",
        'INSERT INTO nowhere VALUES (1)',
      ]),
    ).rejects.toMatchObject({ statusCode: 500, message: expect.stringMatching(/no such table/) });
    expect((await client.query("SELECT name FROM apps WHERE name = 'three'")).rows).toEqual([]);
  });

  it('streams query rows as NDJSON and refuses writes on the query endpoint', async () => {
    const response = await post(`${url}/v1/queries`, [
      'SELECT name, org FROM apps WHERE org = ? ORDER BY name',
      ['acme'],
    ]);
    const lines = (await response.text())
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines[0]).toEqual({ columns: ['name', 'org'] });
    expect(lines.slice(1, 3)).toEqual([
      { row: [1, ['one', 'acme']] },
      { row: [2, ['two', 'acme']] },
    ]);
    expect(lines[3]).toHaveProperty('eoq');
    const write = await post(`${url}/v1/queries`, 'DELETE FROM apps');
    expect(write.status).toBe(400);
    expect(await write.json()).toMatchObject({ code: 'CORRO_ERR_READ_ONLY' });
  });

  it('answers malformed input with a 400 that names the problem', async () => {
    const cases: [unknown, RegExp][] = [
      [{}, /JSON array of statements/],
      [[42], /statement 0/],
      [[{ query: 'SELECT 1', params: [], named_params: {} }], /not both/],
      [[{ query: 'UPDATE apps SET org = ?', params: [{ nested: true }] }], /parameters must be/],
    ];
    for (const [body, message] of cases) {
      const response = await post(`${url}/v1/transactions`, body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(((await response.json()) as { error: string }).error).toMatch(message);
    }
  });

  it('is healthy and exports metrics', async () => {
    const health = await fetch(`${url}/v1/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({
      response: { gaps: 0, members: 0, p99_lag: 0, queue_size: 0 },
    });
    expect(await (await fetch(`${url}/metrics`)).text()).toContain('corro_transactions_total');
  });

  it('refuses calls without the token when one is configured', async () => {
    const guarded = await startAgent(join(tempDir(), 'guarded.db'), [], {
      CORROSION_TOKEN: 's3cret',
    });
    try {
      const denied = await post(`${guarded.urls.api}/v1/queries`, 'SELECT 1');
      expect(denied.status).toBe(401);
      const allowed = await post(`${guarded.urls.api}/v1/queries`, 'SELECT 1', 's3cret');
      expect(allowed.status).toBe(200);
      // The client says so with the status, not as a generic failure.
      const wrong = new CorrosionClient({
        url: present(guarded.urls.api, 'the API url'),
        token: 'wrong',
      });
      try {
        const refusal = await wrong.queryObjects(['SELECT 1', []]).catch((error) => error);
        expect(refusal).toBeInstanceOf(CorrosionError);
        expect(refusal).toMatchObject({ statusCode: 401 });
      } finally {
        await wrong.close();
      }
    } finally {
      await guarded.stop();
    }
  });
});
