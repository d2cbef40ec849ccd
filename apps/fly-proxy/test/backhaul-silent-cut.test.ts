import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { connect, createServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ServerProcess, startServerProcess } from '@fleet/service';
import { until } from '@fleet/service/vitest-until';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Edge, freePort, listening, startEdge, startMachine } from './relay-fixture.js';

const proxyMain = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');

/**
 * A TCP hop between the edge and the backhaul that can drop every byte in both directions
 * without closing anything: what a partition does to a connection (no FIN, no RST).
 */
async function cuttableLink(target: number) {
  let cut = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(from);
      from.on('data', (chunk) => {
        if (!cut) to.write(chunk);
      });
      from.on('close', () => {
        sockets.delete(from);
        to.destroy();
      });
      from.on('error', () => {});
    }
  });
  const { addr } = await listening(server as unknown as Server);
  return {
    addr,
    server,
    set cut(value: boolean) {
      cut = value;
    },
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

// Seen in the multi-region harness: after a 30 s partition between two regions healed, the
// edge's HTTP/2 session to the far backhaul was still "connected" (nothing closed it), and the
// first request on it waited seconds for TCP's next retransmission. A PING left unanswered now
// closes the session, and the next request connects anew.
describe('a backhaul session across a silent network cut', () => {
  let dir: string;
  let edge: Edge;
  let backhaul: ServerProcess | undefined;
  let link: Awaited<ReturnType<typeof cuttableLink>>;
  const servers: (Server | NetServer)[] = [];

  const sessions = async () => {
    const answer = await request(`${edge.urls.admin}/status`);
    const status = (await answer.body.json()) as {
      proxy: { backhauls: { sessions: number; connects: number; pingTimeouts: number } };
    };
    return status.proxy.backhauls;
  };
  const get = async () => {
    const answer = await request(edge.urls.proxy, {
      headers: { host: 'web.fleet.test', 'fly-force-instance-id': 'remote1' },
    });
    const text = await answer.body.text();
    return answer.statusCode === 200 ? (JSON.parse(text).name as string) : text;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-backhaul-cut-'));
    const keyFile = join(dir, 'fleet.key');
    writeFileSync(keyFile, 'backhaul-cut-test-fleet-key-0123456789');
    const remote = await startMachine('remote1');
    servers.push(remote.server);
    const backhaulPort = await freePort();
    link = await cuttableLink(backhaulPort);
    edge = await startEdge([{ id: 'remote1', app: 'web', addr: remote.addr, region: 'ams' }], {
      region: 'ams',
      args: [
        ...['--host-id', 'edge-1', '--fleet-key-file', keyFile],
        ...['--backhaul-ping-interval-ms', '200', '--backhaul-ping-timeout-ms', '1000'],
      ],
    });
    backhaul = await startServerProcess({
      command: process.execPath,
      args: [
        ...[proxyMain, '--mode', 'backhaul', '--listen', `127.0.0.1:${backhaulPort}`],
        ...['--corrosion-url', edge.corrosionUrl, '--domain', 'fleet.test', '--region', 'ams'],
        ...['--host-id', 'worker-2', '--fleet-key-file', keyFile, '--state-dir', join(dir, 'bh')],
      ],
      listeners: ['proxy', 'admin'],
      env: { ...process.env, LOG_LEVEL: 'error' },
    });
    await edge.client.transaction([
      "INSERT INTO hosts (id, region, role) VALUES ('edge-1', 'ams', 'edge')",
      [
        'INSERT INTO hosts (id, region, backhaul_addr) VALUES (?, ?, ?)',
        ['worker-2', 'ams', link.addr],
      ],
      "UPDATE machines SET host_id = 'worker-2' WHERE id = 'remote1'",
    ]);
    await until('remote1 answering through the link', get, (name) => name === 'remote1');
  });

  afterAll(async () => {
    await backhaul?.stop();
    await edge?.stop();
    await link?.close();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('closes the session whose PING goes unanswered, and the next request connects anew', async () => {
    const before = await sessions();
    link.cut = true;
    await until(
      'the silent session closed for its unanswered PING',
      sessions,
      (now) => now.sessions === 0 && now.pingTimeouts > before.pingTimeouts,
    );
    link.cut = false;
    // Served on a new connection, not on the old one waiting out TCP's retransmissions.
    expect(await get()).toBe('remote1');
    expect(await sessions()).toMatchObject({ sessions: 1, connects: before.connects + 1 });
  });
});
