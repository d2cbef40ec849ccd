import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ServerProcess, startServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backhaulToken } from '../src/backhaul.js';
import { type Edge, raw, startEdge, startMachine } from './relay-fixture.js';

const proxyMain = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');
const fleetKey = 'backhaul-test-fleet-key-0123456789';

// Two hosts on one corrosion: an edge on host `edge-1` and a worker `worker-2` with its backhaul
// fly-proxy. The edge reaches the worker's machine only through the backhaul, which delivers
// to machines of its own host only, for edges holding the fleet key.
describe('fly-proxy backhaul mode', () => {
  let dir: string;
  let edge: Edge;
  let backhaul: ServerProcess;
  let backhaulAddr: string;
  const servers: Server[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-backhaul-'));
    const keyFile = join(dir, 'fleet.key');
    writeFileSync(keyFile, fleetKey);
    const [local, remote] = await Promise.all([startMachine('local1'), startMachine('remote1')]);
    servers.push(local.server, remote.server);
    edge = await startEdge(
      [
        { id: 'local1', app: 'web', addr: local.addr, region: 'ams' },
        { id: 'remote1', app: 'web', addr: remote.addr, region: 'ams' },
      ],
      { region: 'ams', args: ['--host-id', 'edge-1', '--fleet-key-file', keyFile] },
    );
    backhaul = await startServerProcess({
      command: process.execPath,
      args: [
        ...[proxyMain, '--mode', 'backhaul', '--listen', '127.0.0.1:0'],
        ...['--corrosion-url', edge.corrosionUrl, '--domain', 'fleet.test', '--region', 'ams'],
        ...['--host-id', 'worker-2', '--fleet-key-file', keyFile, '--state-dir', join(dir, 'bh')],
      ],
      listeners: ['proxy', 'admin'],
      env: { ...process.env, LOG_LEVEL: 'error' },
    });
    backhaulAddr = new URL(present(backhaul.urls.proxy, 'the backhaul listener')).host;
    await edge.client.transaction([
      "INSERT INTO hosts (id, region, role) VALUES ('edge-1', 'ams', 'edge')",
      [
        'INSERT INTO hosts (id, region, backhaul_addr) VALUES (?, ?, ?)',
        ['worker-2', 'ams', backhaulAddr],
      ],
      "UPDATE machines SET host_id = 'edge-1' WHERE id = 'local1'",
      "UPDATE machines SET host_id = 'worker-2' WHERE id = 'remote1'",
    ]);
    await edge.routable('web.fleet.test');
  });

  afterAll(async () => {
    await backhaul?.stop();
    await edge?.stop();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const get = async (headers: Record<string, string>) => {
    const answer = await request(edge.urls.proxy, {
      headers: { host: 'web.fleet.test', ...headers },
    });
    return {
      status: answer.statusCode,
      headers: answer.headers,
      json: (await answer.body.json()) as { name?: string; headers?: Record<string, string> },
    };
  };

  it('reaches a machine of another host through that host backhaul, with the edge headers', async () => {
    // the hosts rows are on their way
    const answer = await until(
      'remote1 answering',
      () => get({ 'fly-force-instance-id': 'remote1' }),
      (reply) => reply.json.name === 'remote1',
    );
    expect(answer.status).toBe(200);
    expect(answer.json.name).toBe('remote1');
    const seen = answer.json.headers as Record<string, string>;
    expect(seen['fly-region']).toBe('ams');
    expect(seen['fly-client-ip']).toBe('127.0.0.1');
    expect(seen['fly-request-id']).toBe(answer.headers['fly-request-id']);
    expect(Object.keys(seen).filter((name) => name.startsWith('fly-backhaul-'))).toEqual([]);
    expect(Object.keys(answer.headers).filter((name) => name.startsWith('fly-backhaul-'))).toEqual(
      [],
    );
    const metrics = await (await request(`${backhaul.urls.admin}/metrics`)).body.text();
    expect(metrics).toMatch(/proxy_requests_total\{app="web",status="200"[^}]*\} [1-9]/);
    // The machine's answer time, aggregated in the process and exported as a histogram.
    expect(metrics).toContain('# TYPE proxy_upstream_ms histogram');
    expect(metrics).toMatch(
      /proxy_upstream_ms_count\{app="web",otel_scope_name="fleet.fly-proxy"\} [1-9]/,
    );
    expect(metrics).toMatch(/proxy_upstream_ms_bucket\{app="web",[^}]*le="\+Inf"\} [1-9]/);
    const local = await get({ 'fly-force-instance-id': 'local1' });
    expect(local.json.name).toBe('local1');
  });

  it('refuses requests without the fleet key token, and machines of other hosts', async () => {
    const url = present(backhaul.urls.proxy, 'the backhaul listener');
    const head = (auth: string, machine: string) =>
      `GET / HTTP/1.1\r\nHost: web.fleet.test\r\nfly-backhaul-machine: ${machine}\r\n` +
      `fly-backhaul-app: web\r\nfly-backhaul-auth: ${auth}\r\nConnection: close\r\n\r\n`;
    const forged = await raw(url, head('0'.repeat(64), 'remote1'));
    expect(forged).toMatch(/^HTTP\/1\.1 403 /);
    expect(forged).toContain('PROXY_ERR_BACKHAUL_AUTH');
    const token = backhaulToken(Buffer.from(fleetKey));
    const elsewhere = await raw(url, head(token, 'local1'));
    expect(elsewhere).toMatch(/^HTTP\/1\.1 404 /);
    expect(elsewhere).toContain('PROXY_ERR_NOT_ON_HOST');
    const delivered = await raw(url, head(token, 'remote1'));
    expect(delivered).toMatch(/^HTTP\/1\.1 200 /);
    expect(delivered).toMatch(/fly-backhaul-load: \d+/);
  });
});
