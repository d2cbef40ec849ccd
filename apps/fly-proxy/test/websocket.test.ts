import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type ClientHttp2Session, connect as connectH2 } from 'node:http2';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ServerProcess, startServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Edge, freePort, startEdge } from './relay-fixture.js';
import {
  opcodes,
  startWebsocketMachine,
  type WebsocketClient,
  type WebsocketMachine,
  websocketOverH2,
  websocketOverHttp1,
} from './websocket-fixture.js';

const proxyMain = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');

/** A message echoed whole, however the proxy cut it (a large one crosses several DATA frames). */
async function echoes(client: WebsocketClient, opcode: number, payload: Buffer): Promise<void> {
  client.send(opcode, payload);
  const frame = await client.next();
  expect(frame.opcode).toBe(opcode);
  expect(frame.payload.equals(payload)).toBe(true);
}

/** The machine's first frame: the request headers it saw, as JSON. */
async function seenHeaders(client: WebsocketClient): Promise<Record<string, string>> {
  const frame = await client.next();
  expect(frame.opcode).toBe(opcodes.text);
  return JSON.parse(frame.payload.toString());
}

/** Closes as RFC 6455 says: the client's close frame, the machine's answer, then the end. */
async function closesCleanly(client: WebsocketClient): Promise<void> {
  const reason = Buffer.from([0x03, 0xe8]); // 1000, normal closure
  client.send(opcodes.close, reason);
  const frame = await client.next();
  expect(frame.opcode).toBe(opcodes.close);
  expect(frame.payload.equals(reason)).toBe(true);
  expect(await client.ended).toBe('end');
}

// WebSocket through a real edge to a real machine speaking HTTP/1.1 Upgrade: over HTTP/2 with
// RFC 8441's extended CONNECT (the proxy translates the stream to an Upgrade and back), and over
// HTTP/1.1; each to a machine on the edge's host and to one behind a worker's backhaul (two hops);
// and once over h2 with TLS (ALPN), the edge's other HTTP/2 listener.
describe('fly-proxy WebSocket over HTTP/2 and HTTP/1.1, one hop and two', () => {
  let dir: string;
  let edge: Edge;
  let backhaul: ServerProcess;
  let local: WebsocketMachine;
  let remote: WebsocketMachine;
  let session: ClientHttp2Session;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-websocket-'));
    [local, remote] = await Promise.all([startWebsocketMachine(), startWebsocketMachine()]);
    const backhaulPort = await freePort();
    edge = await startEdge(
      [
        { id: 'near1', app: 'near', addr: local.addr, region: 'ams' },
        { id: 'far1', app: 'far', addr: remote.addr, region: 'ams' },
      ],
      // With TLS the edge gets a fleet key file of the fixture's; the backhaul shares it.
      { region: 'ams', tls: true, args: ['--host-id', 'edge-1'] },
    );
    const keyFile = join(edge.dir, 'fleet.key');
    backhaul = await startServerProcess({
      command: process.execPath,
      args: [
        ...[proxyMain, '--mode', 'backhaul', '--listen', `127.0.0.1:${backhaulPort}`],
        ...['--corrosion-url', edge.corrosionUrl, '--domain', 'fleet.test', '--region', 'ams'],
        ...['--host-id', 'worker-2', '--fleet-key-file', keyFile],
        ...['--state-dir', join(dir, 'bh')],
      ],
      listeners: ['proxy', 'admin'],
      env: { ...process.env, LOG_LEVEL: 'error' },
    });
    await edge.client.transaction([
      "INSERT INTO hosts (id, region, role) VALUES ('edge-1', 'ams', 'edge')",
      [
        'INSERT INTO hosts (id, region, backhaul_addr) VALUES (?, ?, ?)',
        ['worker-2', 'ams', `127.0.0.1:${backhaulPort}`],
      ],
      "UPDATE machines SET host_id = 'edge-1' WHERE id = 'near1'",
      "UPDATE machines SET host_id = 'worker-2' WHERE id = 'far1'",
    ]);
    // Routable once a plain GET reaches each machine (its answer: "not a websocket").
    for (const host of ['near.fleet.test', 'far.fleet.test']) {
      await until(
        `${host} answers`,
        async () => {
          const answer = await request(edge.urls.proxy, { headers: { host } });
          return await answer.body.text();
        },
        (text) => text === 'not a websocket',
      );
    }
    session = connectH2(edge.urls.proxy);
    session.on('error', () => {});
    await new Promise((resolve) => session.once('remoteSettings', resolve));
  });

  afterAll(async () => {
    session?.close();
    await backhaul?.stop();
    await edge?.stop();
    for (const machine of [local, remote])
      await new Promise((resolve) => machine?.server.close(resolve));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const streamsInFlight = async () => {
    const status = (await (await request(`${edge.proxy.urls.admin}/status`)).body.json()) as {
      proxy: { http1: { streams: number } };
    };
    return status.proxy.http1.streams;
  };

  it('announces extended CONNECT to h2 clients', () => {
    expect(session.remoteSettings.enableConnectProtocol).toBe(true);
  });

  for (const [app, hops] of [
    ['near', 'one hop'],
    ['far', 'two hops (edge, backhaul)'],
  ] as const) {
    it(`relays a WebSocket over HTTP/2 as an HTTP/1.1 Upgrade, both ways, ${hops}`, async () => {
      const opened = await websocketOverH2(session, `${app}.fleet.test`, '/chat?room=1');
      expect(opened.status).toBe(200);
      expect(opened.headers['sec-websocket-protocol']).toBe('chat');
      expect(opened.headers['sec-websocket-accept']).toBeUndefined();
      expect(opened.headers['fly-request-id']).toBeTruthy();
      const client = opened.client;
      const seen = await seenHeaders(client);
      expect(seen).toMatchObject({
        host: `${app}.fleet.test`,
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-protocol': 'chat, superchat',
        via: '2 fly.io',
      });
      expect(seen['sec-websocket-key']).toMatch(/^[A-Za-z0-9+/]{22}==$/);
      await echoes(client, opcodes.text, Buffer.from('hello over h2'));
      // 1 MiB: more than the stream's flow-control window, so backpressure works both ways.
      await echoes(client, opcodes.binary, randomBytes(1 << 20));
      await closesCleanly(client);
      await until('the tunnel stream untracked', streamsInFlight, (streams) => streams === 0);
    });

    it(`relays a WebSocket over HTTP/1.1 Upgrade, ${hops}`, async () => {
      const { head, client } = await websocketOverHttp1(
        edge.urls.proxy,
        `${app}.fleet.test`,
        '/chat',
      );
      expect(head).toMatch(/^HTTP\/1\.1 101 /);
      expect((await seenHeaders(client)).via).toBe('1.1 fly.io');
      await echoes(client, opcodes.text, Buffer.from('hello over 1.1'));
      await echoes(client, opcodes.binary, randomBytes(1 << 20));
      await closesCleanly(client);
    });
  }

  it('relays a WebSocket over h2 with TLS (ALPN h2) the same way', async () => {
    const secure = connectH2(present(edge.proxy.urls.tls, 'the TLS listener'), {
      ca: readFileSync(join(edge.dir, 'ca.pem'), 'utf8'),
      servername: 'far.fleet.test',
    });
    secure.on('error', () => {});
    try {
      const opened = await websocketOverH2(secure, 'far.fleet.test', '/tls', 'websocket', 'https');
      expect(opened.status).toBe(200);
      const seen = await seenHeaders(opened.client);
      expect(seen).toMatchObject({ 'x-forwarded-proto': 'https', via: '2 fly.io' });
      await echoes(opened.client, opcodes.text, Buffer.from('hello over TLS'));
      await closesCleanly(opened.client);
    } finally {
      secure.close();
    }
  });

  it('passes a cut on either side to the other: client reset, machine reset', async () => {
    const opened = await websocketOverH2(session, 'far.fleet.test', '/cut-by-client');
    await seenHeaders(opened.client);
    opened.client.cut(); // RST_STREAM CANCEL from the client
    await until('the machine saw the cut', () => remote.closedPaths.includes('/cut-by-client'));

    const reset = await websocketOverH2(session, 'near.fleet.test', '/reset');
    await seenHeaders(reset.client);
    await echoes(reset.client, opcodes.text, Buffer.from('before the reset'));
    reset.client.send(opcodes.text, Buffer.from('reset'));
    expect(await reset.client.ended).toBe('rst 8'); // the machine's TCP reset: CANCEL
    await until('cut streams untracked', streamsInFlight, (streams) => streams === 0);
  });

  it('relays a refused upgrade as an answer, and refuses what it cannot translate', async () => {
    const refused = await websocketOverH2(session, 'near.fleet.test', '/refuse');
    expect(refused.status).toBe(403);
    expect(refused.body.toString()).toBe('refused');

    const wrongAccept = await websocketOverH2(session, 'near.fleet.test', '/bad-accept');
    expect(wrongAccept.status).toBe(502);
    expect(JSON.parse(wrongAccept.body.toString()).code).toBe('PROXY_ERR_UPSTREAM');

    const otherProtocol = await websocketOverH2(session, 'near.fleet.test', '/', 'chat-proto');
    expect(otherProtocol.status).toBe(400);
    expect(JSON.parse(otherProtocol.body.toString()).code).toBe('PROXY_ERR_BAD_REQUEST');
  });
});
