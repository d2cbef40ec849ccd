import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { CorrosionClient } from '@fleet/corrosion-client';
import type { ServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ndjson, post, startAgent, tempDir } from './agent.js';

/** A read-only query of `count` generated rows, each `width` characters wide. */
const generated = (count: number, width = 10) =>
  `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT ${count})
   SELECT i, printf('%.${width}c', 'x') FROM n`;

// /v1/queries streams from the statement and bounds each answer in rows and bytes: past a bound
// the stream ends with Corrosion's error event naming it, and a client that leaves mid-stream
// costs the agent nothing (no wait on a socket that will never drain).
describe('query bounds', () => {
  const dir = tempDir();
  let agent: ServerProcess;
  let url: string;

  beforeAll(async () => {
    agent = await startAgent(join(dir, 'state.db'), [
      ...['--query-rows-max', '1000', '--query-bytes-max', '100000'],
    ]);
    url = present(agent.urls.api, "the agent's API url");
  });
  afterAll(async () => {
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a result within the bounds whole, ending with eoq', async () => {
    const events = await ndjson(await post(`${url}/v1/queries`, generated(999)));
    expect(events).toHaveLength(1 + 999 + 1);
    expect(events.at(-1)).toHaveProperty('eoq');
  });

  it('ends a result past the row bound with an error naming it', async () => {
    const events = await ndjson(await post(`${url}/v1/queries`, generated(5_000)));
    expect(events).toHaveLength(1 + 1000 + 1);
    expect(events.at(-1)).toEqual({
      error: expect.stringMatching(/after 1000 rows: more than 1000 rows \(--query-rows-max\)/),
    });
  });

  it('ends a result past the byte bound with an error naming it', async () => {
    const events = await ndjson(await post(`${url}/v1/queries`, generated(900, 500)));
    expect(events.length).toBeLessThan(1 + 900 + 1);
    expect(events.at(-1)).toEqual({
      error: expect.stringMatching(/more than 100000 bytes \(--query-bytes-max\)/),
    });
  });

  it('stays at work when clients leave in the middle of their answers', async () => {
    for (let i = 0; i < 20; i++) {
      const response = await post(`${url}/v1/queries`, generated(999, 90));
      const reader = present(response.body, 'the response body').getReader();
      await reader.read();
      await reader.cancel(); // the client leaves with most of the answer unread
    }
    const events = await ndjson(await post(`${url}/v1/queries`, generated(10)));
    expect(events.at(-1)).toHaveProperty('eoq');
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/corro_queries_total\{[^}]*outcome="ok"/);
  });

  it('the client streams rows as they come, stops when asked, and bounds what it collects', async () => {
    const client = new CorrosionClient({ url });
    try {
      let columns: string[] = [];
      let count = 0;
      for await (const row of client.queryRows(generated(999), {
        onColumns: (names) => {
          columns = names;
        },
      })) {
        expect(row).toHaveLength(2);
        count++;
      }
      expect(columns).toHaveLength(2);
      expect(count).toBe(999);
      for await (const _row of client.queryRows(generated(999))) break; // closes the stream
      await expect(client.query(generated(999), { rowsMax: 10 })).rejects.toMatchObject({
        code: 'CORRO_ERR_TOO_MANY_ROWS',
      });
      await expect(client.query(generated(5_000))).rejects.toMatchObject({
        code: 'CORRO_ERR_QUERY',
        message: expect.stringMatching(/--query-rows-max/),
      });
      expect((await client.query(generated(3))).rows).toHaveLength(3);
    } finally {
      await client.close();
    }
  });
});
