import type { Server } from 'node:http';
import { connect as connectH2 } from 'node:http2';
import type { ServerProcess } from '@fleet/service';
import { until } from '@fleet/service/vitest-until';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Edge, raw, startEdge, startMachine } from './relay-fixture.js';

// fly-proxy in lazy catalog mode as a real process over a real corrosion: candidates, retries,
// routing controls, the headers machines see, and the request forms a relay must refuse.
describe('fly-proxy relay', () => {
  let edge: Edge;
  let proxy: ServerProcess;
  const machines: Server[] = [];

  const get = async (host: string, headers: Record<string, string> = {}, path = '/') => {
    const answer = await request(`${proxy.urls.proxy}${path}`, { headers: { host, ...headers } });
    const text = await answer.body.text();
    return { status: answer.statusCode, headers: answer.headers, json: JSON.parse(text) };
  };

  beforeAll(async () => {
    const [ams1, ams2, fra1] = await Promise.all([
      startMachine('ams1'),
      startMachine('ams2'),
      startMachine('fra1'),
    ]);
    machines.push(ams1.server, ams2.server, fra1.server);
    edge = await startEdge(
      [
        { id: 'ams1', app: 'web', addr: ams1.addr, region: 'ams' },
        { id: 'ams2', app: 'web', addr: ams2.addr, region: 'ams' },
        { id: 'fra1', app: 'web', addr: fra1.addr, region: 'fra' },
        { id: 'dead', app: 'flaky', addr: '127.0.0.1:1', region: 'ams' },
        { id: 'alive', app: 'flaky', addr: ams1.addr, region: 'ams' },
      ],
      { region: 'ams' },
    );
    proxy = edge.proxy;
  });

  afterAll(async () => {
    await edge?.stop();
    await Promise.all(machines.map((m) => new Promise((resolve) => m.close(resolve))));
  });

  it('routes to local machines first and honours prefer/force region and instance', async () => {
    await edge.routable('web.fleet.test');
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

  it('leaves the region only when no local machine can take the request, and comes back', async () => {
    await edge.routable('web.fleet.test');
    const servedBy = async () => {
      const names = new Set<string>();
      for (let i = 0; i < 10; i += 1) names.add((await get('web.fleet.test')).json.name);
      return [...names].sort();
    };
    const servedOnlyBy = (expected: string[]) =>
      until(
        `only ${expected.join(', ')} serving`,
        servedBy,
        (names) => names.join() === expected.join(),
      );
    await edge.client.transaction([
      "UPDATE machines SET state = 'stopped' WHERE id IN ('ams1', 'ams2')",
    ]);
    try {
      expect(await servedOnlyBy(['fra1'])).toEqual(['fra1']);
    } finally {
      await edge.client.transaction([
        "UPDATE machines SET state = 'started' WHERE id IN ('ams1', 'ams2')",
      ]);
    }
    expect(await servedOnlyBy(['ams1', 'ams2'])).toEqual(['ams1', 'ams2']);
  });

  it('sends a request that never reached a machine to the next candidate', async () => {
    // The two machines tie, so which comes first is random: ask until the refusing one has
    // been tried (ten answers in a row could all have gone to the live one first), every answer
    // served by the live one. The machine that refused is then ranked last until it answers.
    await until('the refusing machine tried and ranked last', async () => {
      const answer = await get('flaky.fleet.test');
      expect(answer.status).toBe(200);
      expect(answer.json.name).toBe('ams1');
      const status = (await (await request(`${proxy.urls.admin}/status`)).body.json()) as {
        catalog: { machinesUnreachable: number };
      };
      return status.catalog.machinesUnreachable === 1 ? true : undefined;
    });
  });

  it('sets Fly headers itself, replacing what the client sent, and keeps Host', async () => {
    // Raw bytes: undici would send its own Connection header instead of this one.
    const reply = await raw(
      edge.urls.proxy,
      'GET / HTTP/1.1\r\nHost: web.fleet.test\r\nConnection: close, Host, X-Private\r\n' +
        'X-Private: for the proxy only\r\nProxy-Authorization: Basic cHJveHk6c2VjcmV0\r\n' +
        'TE: trailers\r\nKeep-Alive: timeout=5\r\nX-Kept: end to end\r\n' +
        'Fly-Client-IP: 6.6.6.6\r\nFly-Forwarded-Port: 1\r\nFly-Region: evil\r\nVia: 1.1 attacker\r\n\r\n',
    );
    expect(reply).toMatch(/^HTTP\/1\.1 200 /);
    const headers = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)).headers as Record<
      string,
      string
    >;
    const port = new URL(edge.urls.proxy).port;
    expect(headers).toMatchObject({
      host: 'web.fleet.test',
      'fly-client-ip': '127.0.0.1',
      'fly-forwarded-port': port,
      'fly-region': 'ams',
      via: '1.1 fly.io',
      'x-forwarded-proto': 'http',
      'x-forwarded-port': port,
      'x-forwarded-ssl': 'off',
      'x-kept': 'end to end',
    });
    expect(reply).toContain(`fly-request-id: ${headers['fly-request-id']}\r\n`);
    // Hop-by-hop fields and those the client's Connection names stop at the proxy.
    for (const name of ['x-private', 'proxy-authorization', 'te', 'keep-alive'])
      expect(headers[name], name).toBeUndefined();
  });

  it('answers Expect: 100-continue itself and relays the body', async () => {
    const reply = await raw(
      edge.urls.proxy,
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
      edge.urls.proxy,
      'GET / HTTP/1.1\r\nHost: web.fleet.test\r\nHost: other.fleet.test\r\nConnection: close\r\n\r\n',
    );
    expect(twice).toMatch(/^HTTP\/1\.1 400/);
    expect(twice).toContain('PROXY_ERR_BAD_HOST');
    for (const host of ['web.fleet.test, other.fleet.test', 'web.fleet.test:abc', 'web fleet']) {
      const bad = await raw(
        edge.urls.proxy,
        `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      );
      expect(bad, host).toMatch(/^HTTP\/1\.1 400/);
      expect(bad, host).toContain('is not a host name or address with an optional port');
    }
    const ported = await raw(
      edge.urls.proxy,
      'GET / HTTP/1.1\r\nHost: web.fleet.test:8080\r\nConnection: close\r\n\r\n',
    );
    expect(ported).toMatch(/^HTTP\/1\.1 200/);
    const absolute = await raw(
      edge.urls.proxy,
      'GET http://web.fleet.test/a?b=1 HTTP/1.1\r\nHost: ignored.fleet.test\r\nConnection: close\r\n\r\n',
    );
    expect(absolute).toMatch(/^HTTP\/1\.1 200/);
    expect(absolute).toContain('"url":"/a?b=1"');
    expect(absolute).toContain('"host":"web.fleet.test"');
  });

  it('serves h2c with prior knowledge on --listen', async () => {
    const session = connectH2(edge.urls.proxy);
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
