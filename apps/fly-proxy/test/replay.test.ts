import { createServer, type Server } from 'node:http';
import { connect as connectH2 } from 'node:http2';
import { present } from '@fleet/service/invariant';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Edge, listening, startEdge } from './relay-fixture.js';

/**
 * A machine that, when the request's `x-replay-from` names it, answers 409 with the request's
 * `x-replay` as its `fly-replay` header (unless the request is a fallback after a failed
 * replay); otherwise it answers with its name and what it got.
 */
async function replayingMachine(name: string): Promise<{ server: Server; addr: string }> {
  return listening(
    createServer((req, res) => {
      let body = '';
      req.setEncoding('latin1');
      req.on('data', (chunk: string) => {
        body += chunk;
      });
      req.on('end', () => {
        const from = String(req.headers['x-replay-from'] ?? '').split(',');
        const failed = req.headers['fly-replay-failed'] !== undefined; // a fallback: answer it
        if (req.headers['x-replay'] && from.includes(name) && !failed) {
          res.writeHead(409, { 'fly-replay': String(req.headers['x-replay']) });
          res.end('replay me');
          return;
        }
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            name,
            bodyBytes: body.length,
            source: req.headers['fly-replay-src'],
            failed: req.headers['fly-replay-failed'],
          }),
        );
      });
    }),
  );
}

// fly-replay as Fly documents it: a machine's answer carrying the header is never relayed; the
// request, body included, goes where the header says, and comes back when a fallback says so.
describe('fly-replay', () => {
  let edge: Edge;
  let url: string;
  const servers: Server[] = [];

  const send = async (
    host: string,
    replay: string,
    from: string,
    body?: string | Buffer,
  ): Promise<{ status: number; json: Record<string, unknown> }> => {
    const answer = await request(url, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { host, 'x-replay': replay, 'x-replay-from': from },
      body,
    });
    return {
      status: answer.statusCode,
      json: (await answer.body.json()) as Record<string, unknown>,
    };
  };

  beforeAll(async () => {
    const names = ['ams1', 'ams2', 'fra1', 'other1', 'foreign1'];
    const machines = await Promise.all(names.map((name) => replayingMachine(name)));
    servers.push(...machines.map((machine) => machine.server));
    const addrOf = (name: string) => present(machines[names.indexOf(name)], `machine ${name}`).addr;
    edge = await startEdge(
      [
        { id: 'ams1', app: 'web', addr: addrOf('ams1'), region: 'ams' },
        { id: 'ams2', app: 'web', addr: addrOf('ams2'), region: 'ams' },
        { id: 'fra1', app: 'web', addr: addrOf('fra1'), region: 'fra' },
        { id: 'other1', app: 'other', addr: addrOf('other1'), region: 'fra' },
        { id: 'foreign1', app: 'foreign', addr: addrOf('foreign1'), region: 'ams' },
      ],
      { region: 'ams' },
    );
    await edge.client.transaction(["UPDATE apps SET org = 'acme' WHERE name = 'foreign'"]);
    url = edge.urls.proxy;
    await edge.routable('web.fleet.test');
  });

  afterAll(async () => {
    await edge?.stop();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });

  it('replays to the region it names, with fly-replay-src telling who asked and the state', async () => {
    const answer = await send('web.fleet.test', 'region=fra;state=from-test', 'ams1,ams2');
    expect(answer.status).toBe(200);
    expect(answer.json.name).toBe('fra1');
    expect(answer.json.source).toMatch(/^instance=ams[12];region=ams;t=\d{16};state=from-test$/);
  });

  it('replays the request body, and refuses to replay one over 1 MB', async () => {
    const small = await send('web.fleet.test', 'region=fra', 'ams1,ams2', 'x'.repeat(100_000));
    expect(small.json).toMatchObject({ name: 'fra1', bodyBytes: 100_000 });
    const big = await send('web.fleet.test', 'region=fra', 'ams1,ams2', Buffer.alloc(1_100_000, 1));
    expect(big.status).toBe(502);
    expect(big.json.code).toBe('PROXY_ERR_REPLAY');
    // What was kept for replays is given back once each exchange is over.
    const status = (await (await request(`${edge.proxy.urls.admin}/status`)).body.json()) as {
      proxy: { http1: { replayBodiesBytes: number } };
    };
    expect(status.proxy.http1.replayBodiesBytes).toBe(0);
  });

  it('replays to another app of the organization, never to one of another', async () => {
    const same = await send('web.fleet.test', 'app=other', 'ams1,ams2');
    expect(same.json.name).toBe('other1');
    const foreign = await send('web.fleet.test', 'app=foreign', 'ams1,ams2');
    expect(foreign.status).toBe(502);
    expect(foreign.json.code).toBe('PROXY_ERR_REPLAY');
    expect(String(foreign.json.error)).toContain('another organization');
  });

  it('honours instance, and elsewhere leaves out the machine that asked', async () => {
    expect((await send('web.fleet.test', 'instance=fra1', 'ams1,ams2')).json.name).toBe('fra1');
    for (let i = 0; i < 5; i += 1) {
      const answer = await send('web.fleet.test', 'elsewhere=true', 'ams1');
      expect(answer.json.name).not.toBe('ams1');
    }
  });

  it('falls back to the machine that asked when the replay cannot be delivered', async () => {
    const self = await send('web.fleet.test', 'region=syd;fallback=force_self', 'ams1,ams2');
    expect(self.status).toBe(200);
    expect(['ams1', 'ams2']).toContain(self.json.name);
    expect(String(self.json.failed)).toContain('PROXY_ERR_NO_MACHINE');
    const none = await send('web.fleet.test', 'region=syd', 'ams1,ams2');
    expect(none.status).toBe(503);
    expect(none.json.code).toBe('PROXY_ERR_NO_MACHINE');
  });

  it('refuses a malformed header and a replay loop', async () => {
    const bad = await send('web.fleet.test', 'regoin=fra', 'ams1,ams2');
    expect(bad.status).toBe(502);
    expect(String(bad.json.error)).toContain('unknown field "regoin"');
    const loop = await send('web.fleet.test', 'instance=fra1', 'ams1,ams2,fra1');
    expect(loop.status).toBe(502);
    expect(String(loop.json.error)).toContain('replayed more than');
  });

  it('replays requests that came over HTTP/2 too, body included', async () => {
    const session = connectH2(url);
    try {
      const send2 = (headers: Record<string, string>, body: string) =>
        new Promise<{ status: number; json: Record<string, unknown> }>((resolve, reject) => {
          const stream = session.request({
            ':method': 'POST',
            ':path': '/h2',
            ':authority': 'web.fleet.test',
            ...headers,
          });
          let status = 0;
          let text = '';
          stream.on('response', (answer) => {
            status = Number(answer[':status']);
          });
          stream.setEncoding('utf8');
          stream.on('data', (chunk: string) => {
            text += chunk;
          });
          stream.on('end', () => resolve({ status, json: JSON.parse(text) }));
          stream.on('error', reject);
          stream.end(body);
        });
      const replayed = await send2(
        { 'x-replay': 'region=fra;state=h2', 'x-replay-from': 'ams1,ams2' },
        'y'.repeat(5_000),
      );
      expect(replayed.status).toBe(200);
      expect(replayed.json).toMatchObject({ name: 'fra1', bodyBytes: 5_000 });
      expect(replayed.json.source).toMatch(/;state=h2$/);
      const back = await send2(
        { 'x-replay': 'region=syd;fallback=force_self', 'x-replay-from': 'ams1,ams2' },
        'z',
      );
      expect(['ams1', 'ams2']).toContain(back.json.name);
      expect(String(back.json.failed)).toContain('PROXY_ERR_NO_MACHINE');
    } finally {
      session.close();
    }
  });
});
