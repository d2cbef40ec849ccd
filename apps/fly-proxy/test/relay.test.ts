import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect as connectH2 } from 'node:http2';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CorrosionClient } from '@fleet/corrosion-client';
import { type ServerProcess, startServerProcess } from '@fleet/service';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const corrosionMain = join(here, '..', '..', 'corrosion', 'dist', 'main.js');
const proxyMain = join(here, '..', 'dist', 'main.js');
const quiet = { ...process.env, LOG_LEVEL: 'error' };
const http = JSON.stringify([{ port: 80, handlers: ['http'] }]);

/** A stand-in machine answering with its name and what it received. */
async function startMachine(name: string): Promise<{ server: Server; addr: string }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ name, url: req.url, body, headers: req.headers }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, addr: `127.0.0.1:${(server.address() as { port: number }).port}` };
}

/** Sends raw bytes and returns everything the proxy answers until it closes or goes quiet. */
function raw(url: string, bytes: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(bytes));
    let seen = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => {
      seen += chunk;
      if (/\r\n\r\n/.test(seen) && /content-length: (\d+)/i.test(seen)) {
        const length = Number(/content-length: (\d+)/i.exec(seen)![1]);
        if (seen.length - seen.indexOf('\r\n\r\n') - 4 >= length) socket.end();
      }
    });
    socket.on('close', () => resolve(seen));
    socket.on('error', reject);
    socket.setTimeout(20_000, () => socket.destroy(new Error('raw request timed out')));
  });
}

// fly-proxy in lazy catalog mode as a real process over a real corrosion: candidates, retries,
// routing controls, the headers machines see, and the request forms a relay must refuse.
describe('fly-proxy relay', () => {
  let dir: string;
  let corrosion: ServerProcess;
  let proxy: ServerProcess;
  let client: CorrosionClient;
  const machines: Server[] = [];

  const get = async (host: string, headers: Record<string, string> = {}, path = '/') => {
    const answer = await request(`${proxy.urls.proxy}${path}`, { headers: { host, ...headers } });
    const text = await answer.body.text();
    return { status: answer.statusCode, headers: answer.headers, json: JSON.parse(text) };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-relay-'));
    const [ams1, ams2, fra1] = await Promise.all(
      ['ams1', 'ams2', 'fra1'].map((name) => startMachine(name)),
    );
    machines.push(ams1!.server, ams2!.server, fra1!.server);
    corrosion = await startServerProcess({
      command: process.execPath,
      args: [corrosionMain, 'agent', '--db', join(dir, 'c.db'), '--api-addr', '127.0.0.1:0'],
      listeners: ['api'],
      env: quiet,
    });
    client = new CorrosionClient({ url: corrosion.urls.api! });
    const machine = (id: string, app: string, addr: string, region: string) => [
      [
        'INSERT INTO machines (id, app, state, private_addr, region) VALUES (?, ?, ?, ?, ?)',
        [id, app, 'started', addr, region],
      ],
      [
        'INSERT INTO services (machine_id, internal_port, app, ports) VALUES (?, ?, ?, ?)',
        [id, 8080, app, http],
      ],
    ];
    await client.transaction([
      "INSERT INTO apps (name) VALUES ('web')",
      ...machine('ams1', 'web', ams1!.addr, 'ams'),
      ...machine('ams2', 'web', ams2!.addr, 'ams'),
      ...machine('fra1', 'web', fra1!.addr, 'fra'),
      "INSERT INTO apps (name) VALUES ('flaky')",
      ...machine('dead', 'flaky', '127.0.0.1:1', 'ams'),
      ...machine('alive', 'flaky', ams1!.addr, 'ams'),
    ] as Parameters<CorrosionClient['transaction']>[0]);
    proxy = await startServerProcess({
      command: process.execPath,
      args: [
        proxyMain,
        ...['--listen', '127.0.0.1:0', '--corrosion-url', corrosion.urls.api!],
        ...['--domain', 'fleet.test', '--region', 'ams', '--catalog', 'lazy'],
      ],
      listeners: ['proxy', 'admin'],
      env: quiet,
    });
  });

  afterAll(async () => {
    await proxy?.stop();
    await client?.close();
    await corrosion?.stop();
    await Promise.all(machines.map((m) => new Promise((resolve) => m.close(resolve))));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('routes to local machines first and honours prefer/force region and instance', async () => {
    // The proxy announces its listener before the catalog's streams are attached.
    const deadline = Date.now() + 20_000;
    while ((await get('web.fleet.test')).status !== 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const seen = new Set<string>();
    for (let i = 0; i < 20; i += 1) seen.add((await get('web.fleet.test')).json.name);
    expect([...seen].sort()).toEqual(['ams1', 'ams2']);
    expect((await get('web.fleet.test', { 'fly-prefer-region': 'fra' })).json.name).toBe('fra1');
    expect((await get('web.fleet.test', { 'fly-force-region': 'fra' })).json.name).toBe('fra1');
    for (let i = 0; i < 5; i += 1) {
      const forced = await get('web.fleet.test', { 'fly-force-instance-id': 'ams2' });
      expect(forced.json.name).toBe('ams2');
      const preferred = await get('web.fleet.test', { 'fly-prefer-instance-id': 'fra1' });
      expect(preferred.json.name).toBe('fra1');
    }
    const nowhere = await get('web.fleet.test', { 'fly-force-region': 'syd' });
    expect(nowhere.status).toBe(503);
    expect(nowhere.json.code).toBe('PROXY_ERR_NO_MACHINE');
    const missing = await get('web.fleet.test', { 'fly-force-instance-id': 'nope' });
    expect(missing.status).toBe(503);
  });

  it('sends a request that never reached a machine to the next candidate', async () => {
    for (let i = 0; i < 10; i += 1) {
      const answer = await get('flaky.fleet.test');
      expect(answer.status).toBe(200);
      expect(answer.json.name).toBe('ams1');
    }
  });

  it('sets Fly headers itself, replacing what the client sent, and keeps Host', async () => {
    const answer = await get('web.fleet.test', {
      connection: 'host',
      'fly-client-ip': '6.6.6.6',
      'fly-forwarded-port': '1',
      'fly-region': 'evil',
      via: '1.1 attacker',
    });
    const { headers } = answer.json;
    const port = new URL(proxy.urls.proxy!).port;
    expect(headers).toMatchObject({
      host: 'web.fleet.test',
      'fly-client-ip': '127.0.0.1',
      'fly-forwarded-port': port,
      'fly-region': 'ams',
      via: '1.1 fly.io',
      'x-forwarded-proto': 'http',
      'x-forwarded-port': port,
      'x-forwarded-ssl': 'off',
    });
    expect(headers['fly-request-id']).toBe(answer.headers['fly-request-id']);
  });

  it('answers Expect: 100-continue itself and relays the body', async () => {
    const reply = await raw(
      proxy.urls.proxy!,
      'POST /up HTTP/1.1\r\nHost: web.fleet.test\r\nExpect: 100-continue\r\n' +
        'Content-Length: 5\r\nConnection: close\r\n\r\nhello',
    );
    expect(reply).toMatch(/^HTTP\/1\.1 100 Continue\r\n/);
    expect(reply).toMatch(/HTTP\/1\.1 200 OK/);
    expect(reply).toContain('"body":"hello"');
    expect(reply).not.toContain('"expect"');
  });

  it('refuses two Host lines and routes an absolute-form target by its authority', async () => {
    const twice = await raw(
      proxy.urls.proxy!,
      'GET / HTTP/1.1\r\nHost: web.fleet.test\r\nHost: other.fleet.test\r\nConnection: close\r\n\r\n',
    );
    expect(twice).toMatch(/^HTTP\/1\.1 400/);
    expect(twice).toContain('PROXY_ERR_BAD_HOST');
    const absolute = await raw(
      proxy.urls.proxy!,
      'GET http://web.fleet.test/a?b=1 HTTP/1.1\r\nHost: ignored.fleet.test\r\nConnection: close\r\n\r\n',
    );
    expect(absolute).toMatch(/^HTTP\/1\.1 200/);
    expect(absolute).toContain('"url":"/a?b=1"');
    expect(absolute).toContain('"host":"web.fleet.test"');
  });

  it('serves h2c with prior knowledge on --listen', async () => {
    const session = connectH2(proxy.urls.proxy!);
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const stream = session.request({ ':path': '/h2', ':authority': 'web.fleet.test' });
        let text = '';
        stream.setEncoding('utf8');
        stream.on('data', (chunk) => {
          text += chunk;
        });
        stream.on('end', () => resolve(text));
        stream.on('error', reject);
      });
      const seen = JSON.parse(body);
      expect(seen.url).toBe('/h2');
      expect(seen.headers.via).toBe('2 fly.io');
    } finally {
      session.close();
    }
  });

  it('never turns an unknown host into a metric label', async () => {
    const unknown = await get('made-up-name-xyz.fleet.test');
    expect(unknown.status).toBe(404);
    const metrics = await (await request(`${proxy.urls.admin}/metrics`)).body.text();
    expect(metrics).toContain('proxy_requests_total');
    expect(metrics).not.toContain('made-up-name-xyz');
  });
});
