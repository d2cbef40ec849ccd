import { rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { CorrosionClient, type WatchEvent } from '@fleet/corrosion-client';
import type { ServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startAgent, tempDir } from './agent.js';

/**
 * A TCP relay in front of the agent that counts connections and bytes toward the client, and can
 * turn every open connection into a black hole: nothing passes any more, nothing is closed (a
 * peer that vanished without a FIN, a cut cable).
 */
async function relay(target: URL) {
  const open = new Set<Socket>();
  const stats = { connections: 0, bytesToClient: 0 };
  let holes: Socket[] = [];
  const server: Server = createServer((client) => {
    stats.connections++;
    const upstream = connect(Number(target.port), target.hostname);
    open.add(client).add(upstream);
    let passing = true;
    holes.push(client);
    (client as Socket & { blackhole?: () => void }).blackhole = () => {
      passing = false;
    };
    client.on('data', (chunk) => passing && upstream.write(chunk));
    upstream.on('data', (chunk) => {
      if (!passing) return;
      stats.bytesToClient += chunk.length;
      client.write(chunk);
    });
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      a.on('close', () => passing && b.destroy());
      a.on('error', () => {});
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    stats,
    blackholeAll() {
      for (const socket of holes) (socket as Socket & { blackhole: () => void }).blackhole();
      holes = [];
    },
    async close() {
      for (const socket of open) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  await vi.waitUntil(check, { timeout: timeoutMs, interval: 20 }).catch(() => {
    throw new Error(`${what}: not within ${timeoutMs} ms`);
  });
}

// An idle subscription carries heartbeats, so the client tells a quiet agent from a vanished one:
// a stream that stays silent past subscriptionIdleMs is re-attached, and the watch goes on.
describe('subscription heartbeats', () => {
  const dir = tempDir();
  let agent: ServerProcess;
  let front: Awaited<ReturnType<typeof relay>>;

  beforeAll(async () => {
    agent = await startAgent(join(dir, 'state.db'), ['--subscription-heartbeat-ms', '100']);
    front = await relay(new URL(present(agent.urls.api, "the agent's API url")));
  });
  afterAll(async () => {
    await front?.close();
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps an idle stream alive, and re-attaches one that went silent', async () => {
    const idleMs = 2_000;
    const client = new CorrosionClient({ url: front.url, subscriptionIdleMs: idleMs });
    const writer = new CorrosionClient({ url: present(agent.urls.api, "the agent's API url") });
    const events: WatchEvent[] = [];
    const watching = new AbortController();
    const done = client.watch(
      "SELECT id, state FROM machines WHERE app = 'hb'",
      (event) => events.push(event),
      { signal: watching.signal, retryDelayMsMax: 200 },
    );
    try {
      await until(() => events.some((event) => event.type === 'ready'), 'ready');
      const connections = front.stats.connections;
      // Idle: heartbeats flow (bytes arrive with nothing written) and the stream is not cut.
      // Each heartbeat is one 6-byte chunk ("1\r\n\n\r\n") at least 100 ms after the last (a
      // timer never fires early): once more of them than fit in the client's idle bound have
      // passed, a client that did not count them as traffic would have re-attached by now.
      const heartbeats = Math.ceil(idleMs / 100) + 5;
      const bytes = front.stats.bytesToClient;
      await until(
        () => front.stats.bytesToClient >= bytes + 6 * heartbeats,
        `${heartbeats} heartbeats`,
      );
      expect(front.stats.connections).toBe(connections);

      front.blackholeAll();
      // Silent now: the client gives up on the stream and attaches again on a new connection.
      await until(() => front.stats.connections > connections, 're-attach after silence');
      await writer.transaction([
        "INSERT INTO machines (id, app, state) VALUES ('hb1', 'hb', 'started')",
      ]);
      await until(
        () => events.some((event) => event.type === 'change' && event.cells[0] === 'hb1'),
        'the change after the re-attach',
      );
    } finally {
      watching.abort();
      await done;
      await client.close();
      await writer.close();
    }
  });
});
