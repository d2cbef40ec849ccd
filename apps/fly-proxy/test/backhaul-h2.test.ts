import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { connect as connectH2 } from 'node:http2';
import type { Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ServerProcess, startServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backhaulToken } from '../src/backhaul.js';
import { askControl } from '../src/control/client.js';
import { type Edge, freePort, startEdge, startMachine } from './relay-fixture.js';
import { echoThrough, tcpMachine } from './tcp-fixture.js';

const proxyMain = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');
const fleetKey = 'backhaul-h2-test-fleet-key-0123456789';

interface Status {
  proxy: {
    connections: { connections: number };
    backhauls?: { sessions: number; streams: number; connects: number };
  };
}

async function status(url: string): Promise<Status> {
  return (await (await request(`${url}/status`)).body.json()) as Status;
}

// An edge (host edge-1) and a worker's backhaul (host worker-2) as real processes over one
// corrosion: the edge keeps ONE HTTP/2 session to the backhaul, every request a CONNECT stream
// on it; the session comes back after the backhaul restarts; TCP passthrough to a machine of
// the worker goes through the same session.
describe('fly-proxy backhaul over one HTTP/2 session per edge-worker pair', () => {
  let dir: string;
  let keyFile: string;
  let edge: Edge;
  let backhaul: ServerProcess | undefined;
  let backhaulPort: number;
  let tcpPort: number;
  const servers: (Server | NetServer)[] = [];

  const startBackhaul = () =>
    startServerProcess({
      command: process.execPath,
      args: [
        ...[proxyMain, '--mode', 'backhaul', '--listen', `127.0.0.1:${backhaulPort}`],
        ...['--corrosion-url', edge.corrosionUrl, '--domain', 'fleet.test', '--region', 'ams'],
        ...['--host-id', 'worker-2', '--fleet-key-file', keyFile],
        ...['--state-dir', join(dir, 'bh'), '--backhaul-streams-max', '16'],
      ],
      listeners: ['proxy', 'admin'],
      env: { ...process.env, LOG_LEVEL: 'error' },
    });

  const get = async () => {
    const answer = await request(edge.urls.proxy, {
      headers: { host: 'web.fleet.test', 'fly-force-instance-id': 'remote1' },
    });
    const text = await answer.body.text();
    return {
      status: answer.statusCode,
      name: answer.statusCode === 200 ? JSON.parse(text).name : text,
    };
  };

  /** Waits (bounded) until the remote machine answers through the backhaul. */
  const remoteAnswers = async () => {
    await until('remote1 answering', get, (answer) => answer.name === 'remote1');
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-backhaul-h2-'));
    keyFile = join(dir, 'fleet.key');
    writeFileSync(keyFile, fleetKey);
    const [local, remote, echo] = await Promise.all([
      startMachine('local1'),
      startMachine('remote1'),
      tcpMachine(),
    ]);
    servers.push(local.server, remote.server, echo.server);
    [backhaulPort, tcpPort] = [await freePort(), await freePort()];
    edge = await startEdge(
      [
        { id: 'local1', app: 'web', addr: local.addr, region: 'ams' },
        { id: 'remote1', app: 'web', addr: remote.addr, region: 'ams' },
        {
          id: 'tcp1',
          app: 'raw',
          addr: echo.addr,
          region: 'ams',
          ports: [{ port: tcpPort, handlers: [] }],
        },
      ],
      {
        region: 'ams',
        args: ['--host-id', 'edge-1', '--fleet-key-file', keyFile, '--tcp-bind', '127.0.0.1'],
      },
    );
    backhaul = await startBackhaul();
    await edge.client.transaction([
      "INSERT INTO hosts (id, region, role) VALUES ('edge-1', 'ams', 'edge')",
      [
        'INSERT INTO hosts (id, region, backhaul_addr) VALUES (?, ?, ?)',
        ['worker-2', 'ams', `127.0.0.1:${backhaulPort}`],
      ],
      "UPDATE machines SET host_id = 'edge-1' WHERE id = 'local1'",
      "UPDATE machines SET host_id = 'worker-2' WHERE id IN ('remote1', 'tcp1')",
    ]);
    await edge.routable('web.fleet.test');
    await remoteAnswers();
  });

  afterAll(async () => {
    await backhaul?.stop();
    await edge?.stop();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('carries many concurrent requests on exactly one TCP connection to the backhaul', async () => {
    // 200 at once, more than the 16 streams the backhaul allows a session: the rest wait.
    const answers = await Promise.all(Array.from({ length: 200 }, () => get()));
    expect(answers.map((answer) => answer.name)).toEqual(answers.map(() => 'remote1'));
    const atBackhaul = await status(present(backhaul?.urls.admin, "the backhaul's admin URL"));
    expect(atBackhaul.proxy.connections.connections).toBe(1);
    const atEdge = await status(edge.urls.admin);
    expect(atEdge.proxy.backhauls).toMatchObject({ sessions: 1, connects: 1 });
  });

  it('measures the round trip to the backhaul host by PING, and routing sees it', async () => {
    // Unmeasured, a host in the edge's region is estimated at 0 ms; a PING over loopback is > 0.
    const socketPath = join(edge.dir, 'proxy', 'control.sock');
    const answer = await askControl(socketPath, { command: 'catalog', args: ['web'] }, 5_000);
    expect(answer.ok).toBe(true);
    const { route } = (
      answer as { result: { route: { candidates: { machine: string; rttMs: number }[] } } }
    ).result;
    const rtt = Object.fromEntries(route.candidates.map((one) => [one.machine, one.rttMs]));
    expect(rtt.remote1).toBeGreaterThan(0);
    expect(rtt.local1).toBe(0);
  });

  it('refuses a stream without the fleet-key token, and tunnels one with it', async () => {
    const session = connectH2(`http://127.0.0.1:${backhaulPort}`);
    session.on('error', () => {});
    try {
      const answer = (auth: string | undefined, inside?: string) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const stream = session.request({
            ':method': 'CONNECT',
            ':authority': `127.0.0.1:${backhaulPort}`,
            'fly-backhaul-stream': 'http',
            ...(auth === undefined ? {} : { 'fly-backhaul-auth': auth }),
          });
          let status = 0;
          let body = '';
          stream.on('response', (headers) => {
            status = Number(headers[':status']);
          });
          stream.setEncoding('utf8');
          stream.on('data', (chunk: string) => {
            body += chunk;
          });
          stream.on('end', () => resolve({ status, body }));
          stream.on('error', reject);
          if (inside !== undefined) stream.write(inside);
        });
      for (const auth of ['0'.repeat(64), undefined]) {
        const refused = await answer(auth);
        expect(refused.status).toBe(403);
        expect(JSON.parse(refused.body).code).toBe('PROXY_ERR_BACKHAUL_AUTH');
      }
      // The right token opens a tunnel into the backhaul's relay (200, then HTTP/1.1 inside).
      const token = backhaulToken(Buffer.from(fleetKey));
      const tunnelled = await answer(
        token,
        'GET / HTTP/1.1\r\nHost: web.fleet.test\r\nfly-backhaul-machine: remote1\r\n' +
          `fly-backhaul-app: web\r\nfly-backhaul-auth: ${token}\r\nConnection: close\r\n\r\n`,
      );
      expect(tunnelled.status).toBe(200);
      expect(tunnelled.body).toMatch(/^HTTP\/1\.1 200 /);
      expect(tunnelled.body).toMatch(/fly-backhaul-load: \d+/);
      expect(tunnelled.body).toContain('"name":"remote1"');
    } finally {
      session.close();
    }
  });

  it('passes raw TCP to a machine of the other host through the backhaul session', async () => {
    expect(await echoThrough(tcpPort, 'hello through the backhaul')).toContain(
      'hello through the backhaul',
    );
    const atEdge = await status(edge.urls.admin);
    expect(atEdge.proxy.backhauls?.connects).toBe(1);
  });

  it('opens a new session after the backhaul restarts', async () => {
    await present(backhaul, 'the backhaul').stop();
    backhaul = undefined;
    const down = await get();
    expect(down.status).toBe(502);
    backhaul = await startBackhaul();
    await remoteAnswers();
    const atEdge = await status(edge.urls.admin);
    expect(atEdge.proxy.backhauls).toMatchObject({ sessions: 1, connects: 2 });
  });
});
