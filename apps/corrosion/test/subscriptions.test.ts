import { join } from 'node:path';
import { CorrosionClient, type WatchEvent } from '@fleet/corrosion-client';
import type { ServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { post, readLines, startAgent, tempDir } from './agent.js';

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  await vi.waitUntil(check, { timeout: timeoutMs, interval: 20 });
}

// Subscriptions follow a query's result set: rows, end-of-query, then numbered changes.
describe('corrosion subscriptions', () => {
  let agent: ServerProcess;
  let client: CorrosionClient;
  const dbDir = tempDir();

  beforeAll(async () => {
    agent = await startAgent(join(dbDir, 'state.db'));
    client = new CorrosionClient({ url: present(agent.urls.api, "the agent's API url") });
    await client.transaction([
      "INSERT INTO machines (id, app, state) VALUES ('m1', 'web', 'started')",
    ]);
  });
  afterAll(async () => {
    await client.close();
    await agent.stop();
  });

  it('sends current rows, then insert, update and delete changes with contiguous ids', async () => {
    const sql = "SELECT id, state FROM machines WHERE app = 'web'";
    const response = await post(`${agent.urls.api}/v1/subscriptions`, sql);
    const id = response.headers.get('corro-query-id');
    expect(id).toMatch(/[0-9a-f-]{36}/);
    await client.transaction([
      "INSERT INTO machines (id, app, state) VALUES ('m2', 'web', 'created')",
    ]);
    await client.transaction([
      "UPDATE machines SET state = 'started' WHERE id = 'm2'",
      "INSERT INTO machines (id, app) VALUES ('x', 'other')",
    ]);
    await client.transaction(["DELETE FROM machines WHERE id = 'm1'"]);
    const lines = await readLines(response, 6);
    expect(lines).toEqual([
      { columns: ['id', 'state'] },
      { row: [1, ['m1', 'started']] },
      { eoq: { time: 0, change_id: 0 } },
      { change: ['insert', 2, ['m2', 'created'], 1] },
      { change: ['update', 2, ['m2', 'started'], 2] },
      { change: ['delete', 1, ['m1', 'started'], 3] },
    ]);
    // The same query gets the same subscription; resuming replays what came after `from`.
    const again = await post(`${agent.urls.api}/v1/subscriptions`, sql);
    expect(again.headers.get('corro-query-id')).toBe(id);
    await again.body?.cancel();
    const resumed = await fetch(`${agent.urls.api}/v1/subscriptions/${id}?from=1`);
    expect(await readLines(resumed, 2)).toEqual([
      { change: ['update', 2, ['m2', 'started'], 2] },
      { change: ['delete', 1, ['m1', 'started'], 3] },
    ]);
    // POST with `from` resumes the subscription of the same query, as Corrosion does.
    const resumedByQuery = await post(`${agent.urls.api}/v1/subscriptions?from=2`, sql);
    expect(resumedByQuery.headers.get('corro-query-id')).toBe(id);
    expect(await readLines(resumedByQuery, 1)).toEqual([
      { change: ['delete', 1, ['m1', 'started'], 3] },
    ]);
    const noSuchQuery = await post(
      `${agent.urls.api}/v1/subscriptions?from=0`,
      "SELECT id FROM machines WHERE app = 'never-subscribed'",
    );
    expect(noSuchQuery.status).toBe(400);
    expect(await noSuchQuery.json()).toMatchObject({
      code: 'CORRO_ERR_UNKNOWN_SUBSCRIPTION_QUERY',
      error: 'a `from` query param was supplied, but no existing subscription found',
    });
    const badFrom = await post(`${agent.urls.api}/v1/subscriptions?from=-1`, sql);
    expect(badFrom.status).toBe(400);
    expect(await badFrom.json()).toMatchObject({ code: 'CORRO_ERR_BAD_QUERY' });
    const tooNew = await fetch(`${agent.urls.api}/v1/subscriptions/${id}?from=99`);
    expect(tooNew.status).toBe(410);
    const unknown = await fetch(`${agent.urls.api}/v1/subscriptions/nope?from=0`);
    expect(unknown.status).toBe(404);
  });

  it('refuses query shapes it cannot follow, with a clear error', async () => {
    const join = await post(
      `${agent.urls.api}/v1/subscriptions`,
      'SELECT m.id FROM machines m JOIN services s ON s.machine_id = m.id',
    );
    expect(join.status).toBe(400);
    expect(((await join.json()) as { error: string }).error).toMatch(/joins/);
  });

  it('keeps a watch going across an agent restart on the same database and port', async () => {
    const events: WatchEvent[] = [];
    const controller = new AbortController();
    const watching = client.watch(
      "SELECT id, state FROM machines WHERE app = 'api'",
      (event) => events.push(event),
      {
        signal: controller.signal,
        retryDelayMsMax: 200,
      },
    );
    await until(() => events.some((event) => event.type === 'ready'));
    await client.transaction([
      "INSERT INTO machines (id, app, state) VALUES ('a1', 'api', 'started')",
    ]);
    await until(() => events.some((event) => event.type === 'change'));

    // The new agent process knows nothing of the old subscription: the watch must start over
    // with a reset and the full rows, then keep following.
    const address = new URL(present(agent.urls.api, "the agent's API url")).host;
    await agent.stop();
    events.length = 0;
    agent = await startAgent(join(dbDir, 'state.db'), ['--api-addr', address]);
    await until(() => events.some((event) => event.type === 'ready'));
    expect(events[0]).toEqual({ type: 'reset', columns: ['id', 'state'] });
    expect(events.filter((event) => event.type === 'row')).toEqual([
      { type: 'row', rowid: 1, cells: ['a1', 'started'] },
    ]);
    await client.transaction(["UPDATE machines SET state = 'stopped' WHERE id = 'a1'"]);
    await until(() => events.some((event) => event.type === 'change'));
    expect(events.at(-1)).toMatchObject({
      type: 'change',
      kind: 'update',
      cells: ['a1', 'stopped'],
      changeId: 1,
    });
    controller.abort();
    await watching;
  });
});
