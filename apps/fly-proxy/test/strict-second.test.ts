import { spawn } from 'node:child_process';
import type { Server } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { until } from '@fleet/service/vitest-until';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { askControl } from '../src/control/client.js';
import { startHoldingMachine } from './holding-machine.js';
import { KeepAliveClient } from './keep-alive-client.js';
import { type Edge, startEdge } from './relay-fixture.js';

const proxyMain = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');

// Seed 004: a second proxy forced onto a state directory another proxy holds runs in strict mode
// and says so — in its status (admin and control), its log, and a metric — and enforces its low
// per-app cap in the relay: one request of the app in flight, the next answered 503.
describe('a forced second instance', () => {
  let edge: Edge;
  let machine: Awaited<ReturnType<typeof startHoldingMachine>>;
  let second: ReturnType<typeof spawn> | undefined;
  const clients: KeepAliveClient[] = [];

  beforeAll(async () => {
    machine = await startHoldingMachine();
    edge = await startEdge([{ id: 'm1', app: 'web', addr: machine.addr, region: 'ams' }], {
      region: 'ams',
    });
    await edge.routable('web.fleet.test');
  });

  afterAll(async () => {
    for (const client of clients) client.close();
    machine?.release();
    const running = second;
    if (running && running.exitCode === null) {
      running.kill('SIGTERM');
      await new Promise((resolve) => running.once('exit', resolve));
    }
    await edge?.stop();
    (machine?.server as Server | undefined)?.closeAllConnections();
    await new Promise((resolve) => machine?.server.close(resolve));
  });

  it('runs in strict mode beside the active proxy, says so, and caps each app', async () => {
    const stateDir = join(edge.dir, 'proxy');
    const child = spawn(
      process.execPath,
      [
        proxyMain,
        ...['--listen', '127.0.0.1:0', '--corrosion-url', edge.corrosionUrl],
        ...['--domain', 'fleet.test', '--region', 'ams', '--state-dir', stateDir],
        ...['--strict-second-instance', '--strict-app-requests-max', '1'],
      ],
      { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, LOG_LEVEL: 'info' } },
    );
    let output = '';
    second = child;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    const url = (listener: string) =>
      new RegExp(`"listener":"${listener}","url":"([^"]+)"`).exec(output)?.[1];
    const proxyUrl = await until('the proxy listening', () => url('proxy'));
    const adminUrl = await until('the admin listening', () => url('admin'));
    expect(output).toMatch(/"event":"strict_second_instance".*"pid":/);

    const status = (await (await request(`${adminUrl}/status`)).body.json()) as {
      instance: string;
      strict: { appRequestsMax: number; holder: string };
    };
    expect(status.instance).toBe('strict-second');
    expect(status.strict).toMatchObject({ appRequestsMax: 1 });
    expect(status.strict.holder).toContain(`pid ${edge.proxy.child.pid}`);
    const control = await askControl(
      join(stateDir, `second-${second.pid}.sock`),
      { command: 'status', args: [] },
      5_000,
    );
    expect(control).toMatchObject({ ok: true, result: { instance: 'strict-second' } });
    const metrics = await (await request(`${adminUrl}/metrics`)).body.text();
    expect(metrics).toMatch(/proxy_strict_second_instance(\{[^}]*\})? 1/);

    // One request of the app in flight (held by the machine): the next one is refused.
    const port = Number(new URL(proxyUrl).port);
    const held = new KeepAliveClient(port);
    const other = new KeepAliveClient(port);
    clients.push(held, other);
    // the lazy catalog loads the app
    await until(
      'web routed',
      () => other.request('web.fleet.test'),
      (routed) => routed.status === 200,
    );
    const slow = held.request('web.fleet.test', '/slow');
    await until('the held request at the machine', () => (machine.held() === 1 ? true : undefined));
    const refused = await other.request('web.fleet.test');
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body)).toMatchObject({ code: 'PROXY_ERR_STRICT_LIMIT' });
    machine.release();
    expect((await slow).status).toBe(200);
    expect((await other.request('web.fleet.test')).status).toBe(200);
    const after = await (await request(`${adminUrl}/metrics`)).body.text();
    expect(after).toMatch(/proxy_airtime_refusals_total\{reason="requests"[^}]*\} 1/);
  });
});
