import { join } from 'node:path';
import type { ServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ndjson, post, startAgent, tempDir } from './agent.js';

const endless =
  'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c';

// SQLite cannot be interrupted from JavaScript: a query run on the agent's own connection held
// its event loop — writes, replication, health — until it ended, and one that never ends for
// good. Queries run in processes of their own; one past its time bound is killed.
describe('queries in processes of their own', () => {
  let agent: ServerProcess;
  let url: string;

  beforeAll(async () => {
    agent = await startAgent(join(tempDir(), 'state.db'), ['--query-time-ms', '2000']);
    url = present(agent.urls.api, "the agent's API url");
  });
  afterAll(async () => {
    await agent?.stop();
  });

  it('cuts a query that never ends at its time bound, while the agent goes on writing, answering and reading', async () => {
    const order: string[] = [];
    const stuck = post(`${url}/v1/queries`, endless)
      .then(ndjson)
      .then((events) => {
        order.push('endless query');
        return events;
      });
    const write = await post(`${url}/v1/transactions`, [
      "INSERT INTO apps (name) VALUES ('meanwhile')",
    ]);
    expect(write.status).toBe(200);
    order.push('write');
    expect((await fetch(`${url}/v1/health`)).status).toBe(200);
    order.push('health');
    const read = await ndjson(
      await post(`${url}/v1/queries`, "SELECT name FROM apps WHERE name = 'meanwhile'"),
    );
    expect(read).toEqual([
      { columns: ['name'] },
      { row: [1, ['meanwhile']] },
      { eoq: { time: expect.any(Number) } },
    ]);
    order.push('read');
    const events = await stuck;
    expect(events).toEqual([
      { error: expect.stringMatching(/^query stopped: longer than 2000 ms \(--query-time-ms\)$/) },
    ]);
    expect(order).toEqual(['write', 'health', 'read', 'endless query']);
  });

  it('stops a long query that yields rows by itself at the bound, and answers the next one', async () => {
    const rows = await ndjson(
      await post(
        `${url}/v1/queries`,
        'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c WHERE x % 1000 = 0',
      ),
    );
    expect(rows.at(-1)).toEqual({
      error: expect.stringMatching(/^query stopped after \d+ rows: longer than 2000 ms/),
    });
    const next = await ndjson(await post(`${url}/v1/queries`, 'SELECT count(*) FROM apps'));
    expect(next.at(-1)).toHaveProperty('eoq');
  });
});
