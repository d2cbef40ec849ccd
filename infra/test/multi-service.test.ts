import { connect } from 'node:net';
import { FlapsClient } from '@fleet/flaps-client';
import { until } from '@fleet/service/vitest-until';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForProxy } from '../src/launcher/demo.js';
import type { Fleet } from '../src/launcher/fleet.js';
import { startTestFleet } from './test-fleet.js';

const root = process.getuid?.() === 0;

/** A machine that answers `tcp` on a raw connection to 7000 and `http` to HTTP on 8080. */
const twoPorts = [
  'node',
  '-e',
  "require('node:net').createServer((s) => s.end('tcp\\n')).listen(7000); require('node:http').createServer((q, s) => s.end('http\\n')).listen(8080)",
];
const tcp = (publicPort: number) => ({
  protocol: 'tcp',
  internal_port: 7000,
  ports: [{ port: publicPort }],
});
const http = { protocol: 'tcp', internal_port: 8080, ports: [{ port: 80, handlers: ['http'] }] };
/** A second HTTP service, on 9090, with a public port of its own. */
const secondHttp = (publicPort: number) => ({
  protocol: 'tcp',
  internal_port: 9090,
  ports: [{ port: publicPort, handlers: ['http'] }],
});
/**
 * A machine that answers HTTP on 8080 and 9090, each saying which (and whether the request was
 * replayed, or fell back after a replay failed); a first request with `x-replay` is answered 409
 * with that as its `fly-replay`.
 */
const twoHttpPorts = [
  'node',
  '-e',
  `for (const port of [8080, 9090]) require('node:http').createServer((q, s) => {
    const again = q.headers['fly-replay-failed'] ? ' fell back' : q.headers['fly-replay-src'] ? ' replayed' : '';
    if (q.headers['x-replay'] && !again) s.writeHead(409, { 'fly-replay': q.headers['x-replay'] }).end();
    else s.end('http ' + port + again + '\\n');
  }).listen(port)`,
];

/** All that a raw connection to 127.0.0.1:`port` reads before the far end closes. */
function readAll(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let read = '';
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(5_000, () => socket.destroy(new Error('no answer in time')));
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      read += chunk;
    });
    socket.on('end', () => resolve(read));
    socket.on('error', reject);
  });
}

// A machine with two services, as a Fly app with an HTTP and a TCP service, on a real one-host
// fleet: the edge reaches each service on its own internal port at the machine's address (a
// network of its own, as root), whichever comes first in the config. Before, every service was
// dialed at the first one's port (the machine's private_addr).
describe.runIf(root)('a machine with two services', () => {
  let fleet: Fleet;
  let flaps: FlapsClient;

  const started = async (app: string, services: unknown[], exec = twoPorts) => {
    await flaps.createApp(app);
    const created = await flaps.createMachine(app, {
      region: 'local',
      config: { image: 'hello', init: { exec }, services },
    });
    await flaps.waitMachine(app, created.id, 'started');
  };

  beforeAll(async () => {
    fleet = await startTestFleet('services');
    flaps = new FlapsClient(fleet.urls.flaps, fleet.secrets.apiToken);
  });

  afterAll(async () => {
    await fleet?.stop();
  });

  it('is reached on each service’s internal port through the edge', async () => {
    await started('two-tcp-first', [tcp(17_091), http]);
    const answer = await waitForProxy(fleet.urls.proxy, 'two-tcp-first.fleet.test', (reply) =>
      reply.body.includes('http'),
    );
    expect(answer).toMatchObject({ status: 200, body: 'http\n' });

    await started('two-http-first', [http, tcp(17_092)]);
    const read = await until(
      'the tcp service through the edge',
      () => readAll(17_092).catch((error: Error) => error.message),
      (text) => text === 'tcp\n',
    );
    expect(read).toBe('tcp\n');
  });

  it('takes HTTP on a service port of its own to that service, and elsewhere to the first', async () => {
    const second = secondHttp(17_093);
    await started('two-http', [http, second], twoHttpPorts);
    const main = await waitForProxy(fleet.urls.proxy, 'two-http.fleet.test', (reply) =>
      reply.body.startsWith('http'),
    );
    expect(main.body).toBe('http 8080\n');
    const own = await waitForProxy('http://127.0.0.1:17093', 'two-http.fleet.test', (reply) =>
      reply.body.startsWith('http'),
    );
    expect(own.body).toBe('http 9090\n');
  });

  it('replays a request, and falls back, to the service of the port it came in on', async () => {
    const second = secondHttp(17_094);
    await started('two-http-replay', [http, second], twoHttpPorts);
    const host = 'two-http-replay.fleet.test';
    await waitForProxy('http://127.0.0.1:17094', host, (reply) => reply.body.startsWith('http'));
    const replayed = async (replay: string) => {
      const answer = await request('http://127.0.0.1:17094', {
        headers: { host, 'x-replay': replay },
      });
      return { status: answer.statusCode, body: await answer.body.text() };
    };
    expect(await replayed('region=local')).toEqual({ status: 200, body: 'http 9090 replayed\n' });
    expect(await replayed('region=nowhere;fallback=force_self')).toEqual({
      status: 200,
      body: 'http 9090 fell back\n',
    });
  });
});
