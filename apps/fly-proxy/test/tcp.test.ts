import type { Server } from 'node:net';
import { until } from '@fleet/service/vitest-until';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { proxyProtocolHeader } from '../src/tcp/proxy-protocol.js';
import { type Edge, freePort, startEdge, startMachine } from './relay-fixture.js';
import { echoThrough, tcpMachine } from './tcp-fixture.js';

// Services' public ports as Fly's handlers make them: raw TCP passed through, PROXY protocol v1
// and v2 in front of the client's bytes, and the HTTP relay on a port of the service's choosing.
describe('fly-proxy public ports (raw TCP)', () => {
  let edge: Edge;
  const servers: Server[] = [];
  const ports = { raw: 0, v1: 0, v2: 0, http: 0 };
  let proxyProto: Awaited<ReturnType<typeof tcpMachine>>;

  beforeAll(async () => {
    for (const name of Object.keys(ports) as (keyof typeof ports)[]) ports[name] = await freePort();
    const echo = await tcpMachine();
    proxyProto = await tcpMachine();
    const web = await startMachine('web1');
    servers.push(echo.server, proxyProto.server, web.server);
    edge = await startEdge(
      [
        {
          id: 'raw1',
          app: 'raw',
          addr: echo.addr,
          region: 'ams',
          ports: [{ port: ports.raw, handlers: [] }],
        },
        {
          id: 'pp1',
          app: 'pp',
          addr: proxyProto.addr,
          region: 'ams',
          ports: [
            { port: ports.v1, handlers: ['proxy_proto'] },
            { port: ports.v2, handlers: ['proxy_proto'], proxy_proto_options: { version: 'v2' } },
          ],
        },
        {
          id: 'web1',
          app: 'web',
          addr: web.addr,
          region: 'ams',
          ports: [{ port: ports.http, handlers: ['http'] }],
        },
      ],
      { region: 'ams', args: ['--tcp-bind', '127.0.0.1'] },
    );
  });

  afterAll(async () => {
    await edge?.stop();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });

  it('passes a raw TCP connection through to the machine, bytes both ways', async () => {
    expect(await echoThrough(ports.raw, 'hello over tcp')).toBe('hello over tcp');
  });

  it('sends the PROXY protocol header, v1 and v2, before the client bytes', async () => {
    const v1 = await echoThrough(ports.v1, 'after-v1');
    expect(v1).toMatch(
      new RegExp(`^PROXY TCP4 127\\.0\\.0\\.1 127\\.0\\.0\\.1 \\d+ ${ports.v1}\\r\\nafter-v1$`),
    );
    const v2 = await echoThrough(ports.v2, 'after-v2');
    const header = Buffer.from(v2, 'latin1');
    const expected = proxyProtocolHeader(2, {
      sourceAddress: '127.0.0.1',
      sourcePort: header.readUInt16BE(24),
      destinationAddress: '127.0.0.1',
      destinationPort: ports.v2,
    });
    expect(header.subarray(0, expected.length).equals(expected)).toBe(true);
    expect(header.subarray(expected.length).toString('latin1')).toBe('after-v2');
  });

  it('serves HTTP on a port a service names with the http handler', async () => {
    await echoThrough(ports.raw, 'ready'); // listeners are open by now
    const text = await until(`port ${ports.http} serving HTTP`, async () => {
      const answer = await request(`http://127.0.0.1:${ports.http}/alt`, {
        headers: { host: 'web.fleet.test' },
      }).catch(() => undefined);
      const body = await answer?.body.text();
      return answer?.statusCode === 200 ? body : undefined;
    });
    expect(JSON.parse(text).name).toBe('web1');
  });
});
