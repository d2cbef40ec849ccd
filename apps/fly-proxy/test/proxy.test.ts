import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CorrosionClient } from '@fleet/corrosion-client';
import { type ServerProcess, serverMain, startServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const corrosionMain = serverMain('@fleet/corrosion');
const proxyMain = join(here, '..', 'dist', 'main.js');
/** corrosion requires it and fly-proxy presents it; both take it from the environment. */
const corrosionToken = 'corro-t0k';
const quiet = { ...process.env, LOG_LEVEL: 'warn', CORROSION_TOKEN: corrosionToken };
const http = JSON.stringify([{ port: 80, handlers: ['http'] }]);

// fly-proxy as a real process, fed by a real corrosion agent, relaying to a real HTTP server
// standing in for a machine: routing follows the rows written to corrosion.
describe('fly-proxy (edge)', () => {
  let corrosion: ServerProcess;
  let proxy: ServerProcess;
  let client: CorrosionClient;
  let machine: Server;
  let machineAddr: string;
  const dir = mkdtempSync(join(tmpdir(), 'fleet-proxy-'));

  const get = async (host: string, path = '/', init: { method?: 'POST'; body?: string } = {}) => {
    const answer = await request(`${proxy.urls.proxy}${path}`, {
      headers: { host },
      method: init.method ?? 'GET',
      body: init.body,
    });
    return { status: answer.statusCode, headers: answer.headers, body: await answer.body.text() };
  };

  beforeAll(async () => {
    machine = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ url: req.url, method: req.method, body, headers: req.headers }));
      });
    });
    await new Promise<void>((resolve) => machine.listen(0, '127.0.0.1', resolve));
    machineAddr = `127.0.0.1:${(machine.address() as { port: number }).port}`;
    corrosion = await startServerProcess({
      command: process.execPath,
      args: [corrosionMain, 'agent', '--db', join(dir, 'c.db'), '--api-addr', '127.0.0.1:0'],
      listeners: ['api'],
      env: quiet,
    });
    client = new CorrosionClient({
      url: present(corrosion.urls.api, "the agent's API URL"),
      token: corrosionToken,
    });
    await client.transaction([
      "INSERT INTO apps (name) VALUES ('web')",
      [
        'INSERT INTO machines (id, app, state, private_addr, region) VALUES (?, ?, ?, ?, ?)',
        ['m1', 'web', 'started', machineAddr, 'local'],
      ],
      [
        'INSERT INTO services (machine_id, internal_port, app, ports) VALUES (?, ?, ?, ?)',
        ['m1', 8080, 'web', http],
      ],
    ]);
    proxy = await startServerProcess({
      command: process.execPath,
      args: [
        proxyMain,
        '--listen',
        '127.0.0.1:0',
        '--corrosion-url',
        present(corrosion.urls.api, "the agent's API URL"),
        '--domain',
        'fleet.test',
        '--region',
        'ams',
        '--state-dir',
        join(dir, 'proxy'),
      ],
      listeners: ['proxy', 'admin'],
      env: quiet,
    });
  });

  afterAll(async () => {
    try {
      await proxy?.stop();
      await client?.close();
      await corrosion?.stop();
      machine?.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('relays a request to the machine with forwarding headers and streams the body', async () => {
    const answer = await until(
      'a 200',
      () => get('web.fleet.test', '/hello?x=1', { method: 'POST', body: 'payload' }),
      (reply) => reply.status === 200,
    );
    expect(answer.status).toBe(200);
    const seen = JSON.parse(answer.body);
    expect(seen).toMatchObject({ url: '/hello?x=1', method: 'POST', body: 'payload' });
    expect(seen.headers).toMatchObject({
      'fly-region': 'ams',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'web.fleet.test',
    });
    expect(seen.headers['fly-request-id']).toBe(answer.headers['fly-request-id']);
    expect(seen.headers['x-forwarded-for']).toContain('127.0.0.1');
  });

  it('answers 404 JSON for an unknown app and 400 without a host', async () => {
    const missing = await get('nobody.fleet.test');
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body)).toMatchObject({
      code: 'PROXY_ERR_NO_APP',
      error: expect.stringMatching(/nobody/),
    });
  });

  it('answers 503 with the reason while the machine is stopped, and routes again once started', async () => {
    await client.transaction(["UPDATE machines SET state = 'stopped' WHERE id = 'm1'"]);
    const stopped = await until(
      'a 503',
      () => get('web.fleet.test'),
      (reply) => reply.status === 503,
    );
    expect(JSON.parse(stopped.body)).toMatchObject({
      code: 'PROXY_ERR_NO_MACHINE',
      error: expect.stringMatching(/no started machine.*1 stopped/),
    });
    await client.transaction(["UPDATE machines SET state = 'started' WHERE id = 'm1'"]);
    expect(
      (
        await until(
          'a 200',
          () => get('web.fleet.test'),
          (reply) => reply.status === 200,
        )
      ).status,
    ).toBe(200);
  });

  it('answers 502 when the machine cannot be reached, with a hint when it refused', async () => {
    // On the worker's loopback (flyd without networks), and at an address of its own.
    const machines = [
      ['gone', 'm9', '127.0.0.1:1', /is the app listening on its PORT, 1\?/],
      [
        'gone-own',
        'm10',
        '127.0.0.2:1',
        /is the app listening on 0\.0\.0\.0:1, not on 127\.0\.0\.1 only\?/,
      ],
    ] as const;
    for (const [app, id, address, hint] of machines) {
      await client.transaction([
        ['INSERT INTO apps (name) VALUES (?)', [app]],
        [
          "INSERT INTO machines (id, app, state, private_addr) VALUES (?, ?, 'started', ?)",
          [id, app, address],
        ],
        [
          'INSERT INTO services (machine_id, internal_port, app, ports) VALUES (?, ?, ?, ?)',
          [id, 8080, app, http],
        ],
      ]);
      const answer = await until(
        `the app ${app} known (an answer but 404)`,
        () => get(`${app}.fleet.test`),
        (reply) => reply.status !== 404,
      );
      expect(answer.status).toBe(502);
      expect(JSON.parse(answer.body)).toMatchObject({
        code: 'PROXY_ERR_UPSTREAM',
        error: expect.stringMatching(hint),
      });
    }
  });

  it('keeps routing after a poisonous services row and reports it in /status', async () => {
    await client.transaction([
      [
        'INSERT INTO services (machine_id, internal_port, app, ports) VALUES (?, ?, ?, ?)',
        ['m1', 9999, 'web', '{oops'],
      ],
    ]);
    const status = await until(
      'the rejected row in /status',
      async () =>
        (await request(`${proxy.urls.admin}/status`)).body.json() as Promise<{
          catalog: { rejectedRows: number };
        }>,
      (body) => body.catalog.rejectedRows > 0,
    );
    expect(status.catalog.rejectedRows).toBe(1);
    expect((await get('web.fleet.test')).status).toBe(200);
    const metrics = await (await request(`${proxy.urls.admin}/metrics`)).body.text();
    expect(metrics).toContain('proxy_requests_total');
  });
});
