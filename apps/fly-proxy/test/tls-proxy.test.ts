import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect as connectHttp2 } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import type { CorrosionClient } from '@fleet/corrosion-client';
import { type ServerProcess, startServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCorrosion } from './tls-fixture.js';

const here = dirname(fileURLToPath(import.meta.url));
const proxyMain = join(here, '..', 'dist', 'main.js');

// fly-proxy as a real process with --tls-listen: it creates the fleet CA files, issues a
// certificate for an app's name on the first handshake and relays HTTPS (HTTP/1.1 and h2) to the
// machine, which sees an HTTP/1.1 request with the Host the client named.
describe('fly-proxy with TLS', () => {
  let agent: ServerProcess;
  let client: CorrosionClient;
  let proxy: ServerProcess;
  let machine: Server;
  let tlsPort: number;
  let caPem: string;

  let dir: string;
  beforeAll(async () => {
    machine = createServer((request, response) => {
      response.setHeader('content-type', 'application/json');
      const { host, 'x-forwarded-proto': proto, 'x-forwarded-ssl': ssl } = request.headers;
      response.end(JSON.stringify({ url: request.url, host, proto, ssl }));
    });
    await new Promise<void>((resolve) => machine.listen(0, '127.0.0.1', resolve));
    const machineAddr = `127.0.0.1:${(machine.address() as { port: number }).port}`;
    ({ agent, client } = await startCorrosion());
    await client.transaction([
      "INSERT INTO apps (name) VALUES ('web')",
      [
        'INSERT INTO machines (id, app, state, private_addr, region) VALUES (?, ?, ?, ?, ?)',
        ['m1', 'web', 'started', machineAddr, 'local'],
      ],
      [
        'INSERT INTO services (machine_id, internal_port, app, ports) VALUES (?, ?, ?, ?)',
        ['m1', 8080, 'web', JSON.stringify([{ port: 443, handlers: ['tls', 'http'] }])],
      ],
    ]);
    dir = mkdtempSync(join(tmpdir(), 'fleet-proxy-tls-'));
    writeFileSync(join(dir, 'fleet.key'), 'test-fleet-key-0123456789abcdef\n');
    proxy = await startServerProcess({
      command: process.execPath,
      args: [
        proxyMain,
        ...['--listen', '127.0.0.1:0', '--tls-listen', '127.0.0.1:0'],
        ...[
          '--corrosion-url',
          present(agent.urls.api, "the agent's API URL"),
          '--domain',
          'fleet.test',
        ],
        ...['--fleet-key-file', join(dir, 'fleet.key'), '--state-dir', join(dir, 'proxy')],
        ...['--ca-cert-file', join(dir, 'ca.pem'), '--ca-key-file', join(dir, 'ca.key')],
      ],
      listeners: ['proxy', 'tls', 'admin'],
      env: { ...process.env, LOG_LEVEL: 'warn' },
    });
    tlsPort = Number(new URL(present(proxy.urls.tls, 'the TLS listener')).port);
    caPem = readFileSync(join(dir, 'ca.pem'), 'utf8');
  });

  afterAll(async () => {
    await proxy?.stop();
    await client?.close();
    await agent?.stop();
    machine?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const getH1 = () =>
    new Promise<{ status: number; body: string; leaf: X509Certificate }>((resolve, reject) => {
      const request = httpsRequest(
        {
          host: '127.0.0.1',
          port: tlsPort,
          servername: 'web.fleet.test',
          headers: { host: 'web.fleet.test' },
          path: '/over-tls',
          ca: caPem,
          agent: false,
        },
        (response) => {
          const leaf = present(
            (response.socket as TLSSocket).getPeerX509Certificate(),
            "the proxy's certificate",
          );
          let body = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            body += chunk;
          });
          response.on('end', () => resolve({ status: response.statusCode ?? 0, body, leaf }));
        },
      );
      request.on('error', reject);
      request.end();
    });

  it('relays HTTPS over HTTP/1.1 with a certificate issued by the CA it created', async () => {
    // the catalog may still be loading
    const answer = await until('a 200 over TLS', getH1, (reply) => reply.status === 200);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({
      url: '/over-tls',
      host: 'web.fleet.test',
      proto: 'https',
      ssl: 'on',
    });
    expect(answer.leaf.checkIssued(new X509Certificate(caPem))).toBe(true);
    const rows = await client.queryObjects<{ app: string }>(
      "SELECT app FROM certificates WHERE hostname = 'web.fleet.test'",
    );
    expect(rows).toEqual([{ app: 'web' }]);
  });

  it('relays h2 requests to an HTTP/1.1 machine with :authority as Host', async () => {
    const session = connectHttp2(`https://127.0.0.1:${tlsPort}`, {
      ca: caPem,
      servername: 'web.fleet.test',
    });
    const { status, body } = await new Promise<{ status: number; body: string }>(
      (resolve, reject) => {
        const stream = session.request({ ':path': '/h2', ':authority': 'web.fleet.test' });
        let status = 0;
        let text = '';
        stream.on('response', (headers) => {
          status = Number(headers[':status']);
        });
        stream.setEncoding('utf8');
        stream.on('data', (chunk: string) => {
          text += chunk;
        });
        stream.on('end', () => resolve({ status, body: text }));
        stream.on('error', reject);
        stream.end();
      },
    );
    session.close();
    expect(status).toBe(200);
    expect(JSON.parse(body)).toEqual({
      url: '/h2',
      host: 'web.fleet.test',
      proto: 'https',
      ssl: 'on',
    });
  });
});
