import type { Server } from 'node:http';
import { connect } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Edge, startEdge, startMachine } from './relay-fixture.js';

// `--idle-timeout-ms` and `--wakeups-without-progress-max` bound the cleartext listener's
// connections too, not only TLS's: a kept-alive HTTP/1.1 client that goes quiet is closed after
// the operator's bound (it stayed open the guard's default 60 s whatever the flag said).
describe('the cleartext listener under --idle-timeout-ms', () => {
  let machine: Server;
  let edge: Edge;

  beforeAll(async () => {
    const started = await startMachine('m1');
    machine = started.server;
    edge = await startEdge([{ id: 'm1', app: 'web', addr: started.addr, region: 'ams' }], {
      region: 'ams',
      args: ['--idle-timeout-ms', '1500'],
    });
    await edge.routable('web.fleet.test');
  });
  afterAll(async () => {
    await edge?.stop();
    await new Promise((resolve) => machine?.close(resolve));
  });

  const idleCuts = async () => {
    const status = (await (await request(`${edge.urls.admin}/status`)).body.json()) as {
      proxy: { connections: { closed: Record<string, number> } };
    };
    return status.proxy.connections.closed.idle ?? 0;
  };

  it('closes a keep-alive connection quiet past the bound, counted as idle', async () => {
    const before = await idleCuts();
    const { port, hostname } = new URL(edge.urls.proxy);
    const socket = connect(Number(port), hostname);
    let answered = '';
    socket.on('data', (chunk) => {
      answered += chunk.toString('latin1');
    });
    socket.write('GET / HTTP/1.1\r\nhost: web.fleet.test\r\n\r\n');
    const startedAt = Date.now();
    const closedAfterMs = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('still open after 20 s')), 20_000);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve(Date.now() - startedAt);
      });
    });
    expect(answered).toMatch(/^HTTP\/1\.1 200 /);
    expect(closedAfterMs).toBeGreaterThanOrEqual(1_500);
    // At least this one (the readiness check's pooled connection may have idled out too).
    expect(await idleCuts()).toBeGreaterThan(before);
  }, 30_000);
});
