import { execFile } from 'node:child_process';
import type { Server } from 'node:http';
import { connect as connectH2 } from 'node:http2';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHoldingMachine } from './holding-machine.js';
import { KeepAliveClient } from './keep-alive-client.js';
import { type Edge, startEdge } from './relay-fixture.js';

const proxyctlMain = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  'dist',
  'control',
  'proxyctl.js',
);

function proxyctl(args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [proxyctlMain, ...args], { timeout: 20_000 }, (error, stdout) => {
      resolve({ code: error === null ? 0 : Number(error.code), stdout });
    });
  });
}

// A real proxy told `proxyctl drain`: it stops accepting at once, answers the request on the
// wire with `Connection: close`, sends HTTP/2 GOAWAY, closes idle keep-alive connections only
// after the grace, lets a long request finish, and then exits 0 by itself.
describe('drain', () => {
  let edge: Edge;
  let machine: Awaited<ReturnType<typeof startHoldingMachine>>;
  const clients: KeepAliveClient[] = [];

  beforeAll(async () => {
    machine = await startHoldingMachine();
    edge = await startEdge([{ id: 'm1', app: 'web', addr: machine.addr, region: 'ams' }], {
      region: 'ams',
      args: ['--drain-grace-ms', '3000', '--drain-deadline-ms', '60000'],
    });
    await edge.routable('web.fleet.test');
  });

  afterAll(async () => {
    for (const client of clients) client.close();
    machine?.release();
    await edge?.stop();
    (machine?.server as Server | undefined)?.closeAllConnections();
    await new Promise((resolve) => machine?.server.close(resolve));
  });

  it('stops accepting, closes idle keep-alive after the grace, finishes a long request, exits 0', async () => {
    const port = Number(new URL(edge.urls.proxy).port);
    const socket = join(edge.dir, 'proxy', 'control.sock');
    for (let index = 0; index < 3; index++) {
      const client = new KeepAliveClient(port);
      clients.push(client);
      expect((await client.request('web.fleet.test')).status).toBe(200);
    }
    const slowClient = new KeepAliveClient(port);
    clients.push(slowClient);
    const slow = slowClient.request('web.fleet.test', '/slow');
    await until('the long request to reach the machine', () => machine.held() === 1);
    const h2 = connectH2(edge.urls.proxy);
    h2.on('error', () => undefined);
    const goaway = new Promise<void>((resolve) => h2.once('goaway', () => resolve()));
    const h2Answer = h2.request({ ':path': '/', host: 'web.fleet.test' });
    h2Answer.on('error', () => undefined);
    const h2Status = await new Promise((resolve) =>
      h2Answer.once('response', (h) => resolve(h[':status'])),
    );
    expect(h2Status).toBe(200);
    h2Answer.resume();

    const drained = await proxyctl(['--socket', socket, '--json', 'drain']);
    expect(drained.code).toBe(0);
    expect(JSON.parse(drained.stdout).result).toMatchObject({
      state: 'draining',
      reason: 'proxyctl',
    });
    await goaway;
    h2.close();
    const status = await request(`${edge.proxy.urls.admin}/status`);
    expect(((await status.body.json()) as { state: string }).state).toBe('draining');
    const ctlStatus = await proxyctl(['--socket', socket, '--json', 'status']);
    expect(JSON.parse(ctlStatus.stdout).result.state).toBe('draining');

    // No new connection: the listening handle is closed.
    const refused = await new Promise<string>((resolve) => {
      const probe = connect(port, '127.0.0.1', () => {
        probe.destroy();
        resolve('accepted');
      });
      probe.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');

    // Within the grace an idle keep-alive connection still carries a request, told to close.
    const client = (index: number) => present(clients[index], `keep-alive client ${index}`);
    const [first, second, third] = [client(0), client(1), client(2)];
    const last = await first.request('web.fleet.test');
    expect(last.status).toBe(200);
    expect(last.headers.connection).toBe('close');
    await first.closed;
    expect(second.isClosed).toBe(false);
    await Promise.all([second.closed, third.closed]);

    // The long request is still in flight and the proxy waits for it.
    expect(edge.proxy.child.exitCode).toBeNull();
    machine.release();
    const answer = await slow;
    expect(answer).toMatchObject({ status: 200, body: 'done /slow' });
    expect(answer.headers.connection).toBe('close');
    expect(await edge.proxy.exited).toBe(0);
  });
});

/** Opens a WebSocket-style tunnel through the proxy; `seen()` is every byte echoed so far. */
async function openTunnel(port: number) {
  const socket = connect(port, '127.0.0.1');
  socket.setEncoding('latin1');
  socket.on('error', () => undefined);
  let seen = '';
  socket.on('data', (chunk: string) => {
    seen += chunk;
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(
    'GET /chat HTTP/1.1\r\nHost: web.fleet.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
  );
  await until('the 101', () => seen.includes('\r\n\r\n'));
  expect(seen).toMatch(/^HTTP\/1\.1 101 /);
  return { socket, closed, seen: () => seen };
}

// A tunnel (WebSocket, upgraded) outlives the grace that closes idle keep-alive connections: it
// still carries bytes after they closed, and is cut only at the hard drain deadline, after which
// the proxy exits 0.
describe('drain with a tunnel open', () => {
  let edge: Edge;
  let machine: Awaited<ReturnType<typeof startHoldingMachine>>;
  const clients: KeepAliveClient[] = [];

  beforeAll(async () => {
    machine = await startHoldingMachine();
    edge = await startEdge([{ id: 'm1', app: 'web', addr: machine.addr, region: 'ams' }], {
      region: 'ams',
      args: ['--drain-grace-ms', '200', '--drain-deadline-ms', '4000'],
    });
    await edge.routable('web.fleet.test');
  });

  afterAll(async () => {
    for (const client of clients) client.close();
    await edge?.stop();
    (machine?.server as Server | undefined)?.closeAllConnections();
    await new Promise((resolve) => machine?.server.close(resolve));
  });

  it('keeps a tunnel past the grace and cuts it at the deadline', async () => {
    const port = Number(new URL(edge.urls.proxy).port);
    const idle = new KeepAliveClient(port);
    clients.push(idle);
    expect((await idle.request('web.fleet.test')).status).toBe(200);
    const tunnel = await openTunnel(port);
    try {
      const socket = join(edge.dir, 'proxy', 'control.sock');
      expect((await proxyctl(['--socket', socket, 'drain'])).code).toBe(0);
      await idle.closed;
      tunnel.socket.write('after-the-grace');
      await until('the echo through the tunnel', () => tunnel.seen().includes('after-the-grace'));
      expect(edge.proxy.child.exitCode).toBeNull();
      await tunnel.closed;
      expect(await edge.proxy.exited).toBe(0);
    } finally {
      tunnel.socket.destroy();
    }
  });
});
