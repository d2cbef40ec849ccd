import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CorrosionClient } from '@fleet/corrosion-client';
import { type ServerProcess, serverMain, startServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { request } from 'undici';

const here = dirname(fileURLToPath(import.meta.url));
const corrosionMain = serverMain('@fleet/corrosion');
const proxyMain = join(here, '..', 'dist', 'main.js');
const quiet = { ...process.env, LOG_LEVEL: process.env.FLEET_TEST_LOG_LEVEL ?? 'error' };
const httpService = JSON.stringify([{ port: 80, handlers: ['http'] }]);

/** A stand-in machine answering with its name and what it received. */
export async function startMachine(name: string): Promise<{ server: Server; addr: string }> {
  return listening(
    createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ name, url: req.url, body, headers: req.headers }));
      });
    }),
  );
}

/** A port free on 127.0.0.1 a moment ago (for a process that must be told its port). */
export async function freePort(): Promise<number> {
  // Below the kernel's ephemeral range (32768 and up on Linux): a port from listen(0) goes back
  // to that pool when closed, and another test file's listen(0) or outgoing connection can take
  // it before the proxy binds it (seen in CI: another file's echo server answering on a public
  // port the proxy could not open, so a PROXY header never came back).
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const server = createNetServer();
    const free = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (free) {
      await new Promise((resolve) => server.close(resolve));
      return port;
    }
  }
  throw new Error('no free port found between 20000 and 32000 in 100 tries');
}

/** Listens on 127.0.0.1, port 0; the address as a machines row holds it. */
export async function listening(server: Server): Promise<{ server: Server; addr: string }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, addr: `127.0.0.1:${(server.address() as { port: number }).port}` };
}

/** Sends raw bytes and returns everything the proxy answers until it closes or goes quiet. */
export function raw(url: string, bytes: string | Buffer): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(bytes));
    let seen = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk) => {
      seen += chunk;
      if (/\r\n\r\n/.test(seen) && /content-length: (\d+)/i.test(seen)) {
        const length = Number(/content-length: (\d+)/i.exec(seen)?.[1]);
        if (seen.length - seen.lastIndexOf('\r\n\r\n') - 4 >= length) socket.end();
      }
    });
    socket.on('close', () => resolve(seen));
    socket.on('error', reject);
    socket.setTimeout(20_000, () => socket.destroy(new Error('raw request timed out')));
  });
}

export interface MachineRow {
  id: string;
  app: string;
  addr: string;
  region: string;
  /** The service's `ports` (default: port 80 with the `http` handler). */
  ports?: unknown[];
}

export interface Edge {
  proxy: ServerProcess;
  /** The proxy's listeners it announced: requests (`proxy`), `/status` and `/metrics` (`admin`). */
  urls: { proxy: string; admin: string };
  client: CorrosionClient;
  corrosionUrl: string;
  corrosion: ServerProcess;
  /** The edge's own directory (its CA is `ca.pem` there when started with `tls`). */
  dir: string;
  /** Waits (bounded) until a request for `host` is answered by a machine. */
  routable(host: string): Promise<void>;
  stop(): Promise<void>;
}

/** A TLS listener with a fleet key and a CA the proxy creates in `dir` (`ca.pem`). */
function tlsArgs(dir: string): string[] {
  writeFileSync(join(dir, 'fleet.key'), 'relay-fixture-fleet-key-0123456789');
  return [
    ...['--tls-listen', '127.0.0.1:0', '--fleet-key-file', join(dir, 'fleet.key')],
    ...['--ca-cert-file', join(dir, 'ca.pem'), '--ca-key-file', join(dir, 'ca.key')],
  ];
}

/**
 * A real corrosion agent holding `machines` (their apps created, one HTTP service each) and a
 * real fly-proxy process over it, in lazy catalog mode, with `args` added to its command line.
 */
export async function startEdge(
  machines: MachineRow[],
  options: { region: string; args?: string[]; tls?: boolean },
): Promise<Edge> {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-relay-'));
  const started: { stop(): Promise<void> }[] = [];
  const stop = async () => {
    for (const each of started.reverse()) await each.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const corrosion = await startServerProcess({
      command: process.execPath,
      args: [corrosionMain, 'agent', '--db', join(dir, 'c.db'), '--api-addr', '127.0.0.1:0'],
      listeners: ['api'],
      env: quiet,
    });
    started.push(corrosion);
    const corrosionUrl = present(corrosion.urls.api, "the agent's API URL");
    const client = new CorrosionClient({ url: corrosionUrl });
    started.push({ stop: () => client.close() });
    const apps = [...new Set(machines.map((machine) => machine.app))];
    await client.transaction([
      ...apps.map((app) => ['INSERT INTO apps (name) VALUES (?)', [app]]),
      ...machines.flatMap(({ id, app, addr, region, ports }) => [
        [
          'INSERT INTO machines (id, app, state, private_addr, region) VALUES (?, ?, ?, ?, ?)',
          [id, app, 'started', addr, region],
        ],
        [
          'INSERT INTO services (machine_id, internal_port, app, ports) VALUES (?, ?, ?, ?)',
          [id, 8080, app, ports === undefined ? httpService : JSON.stringify(ports)],
        ],
      ]),
    ] as Parameters<CorrosionClient['transaction']>[0]);
    const proxy = await startServerProcess({
      command: process.execPath,
      args: [
        proxyMain,
        ...['--listen', '127.0.0.1:0', '--corrosion-url', corrosionUrl],
        ...['--domain', 'fleet.test', '--region', options.region, '--catalog', 'lazy'],
        ...['--state-dir', join(dir, 'proxy')],
        ...(options.tls ? tlsArgs(dir) : []),
        ...(options.args ?? []),
      ],
      listeners: options.tls ? ['proxy', 'admin', 'tls'] : ['proxy', 'admin'],
      env: quiet,
    });
    started.push(proxy);
    const urls = {
      proxy: present(proxy.urls.proxy, "the proxy's URL"),
      admin: present(proxy.urls.admin, "the proxy's admin URL"),
    };
    const routable = async (host: string) => {
      // The proxy announces its listener before the catalog's streams are attached.
      await until(`${host} answering 200`, async () => {
        const answer = await request(urls.proxy, { headers: { host } });
        await answer.body.dump();
        return answer.statusCode === 200;
      });
    };
    return { proxy, urls, client, corrosion, corrosionUrl, dir, routable, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
