import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect, createServer as createTcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CorrosionClient } from '@fleet/corrosion-client';
import { type ServerProcess, serverMain, startMetrics, startServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { Catalog, type CatalogOptions } from '../src/index.js';
import { machineCells, quiet } from './fixtures.js';

const corrosionMain = serverMain('@fleet/corrosion');

function runAgent(dir: string): Promise<ServerProcess> {
  return startServerProcess({
    command: process.execPath,
    args: [corrosionMain, 'agent', '--db', join(dir, 'c.db'), '--api-addr', '127.0.0.1:0'],
    listeners: ['api'],
    env: { ...process.env, LOG_LEVEL: 'warn' },
  });
}

/**
 * A TCP relay on an ephemeral port to the agent's current API port, so an agent restarted on a
 * new port keeps one address for its clients. Its connections close with the agent's.
 */
async function startRelay(target: () => number) {
  const sockets = new Set<Socket>();
  const server = createTcpServer((inbound) => {
    const outbound = connect(target(), '127.0.0.1');
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * A real corrosion agent (a child process on a temporary SQLite file, reached through a relay)
 * and Catalogs following it. `freeze()` stops the agent (SIGSTOP): it keeps its sockets but
 * answers nothing, as a paused or wedged agent. `restart()` stops it and starts it again on the
 * same file: its subscriptions are gone, so followers start over (a reset). `stop()` undoes
 * everything, also after a failed test.
 */
export async function startAgent() {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-catalog-'));
  let corrosion = await runAgent(dir);
  const relay = await startRelay(() =>
    Number(new URL(present(corrosion.urls.api, 'the agent API URL')).port),
  );
  const client = new CorrosionClient({ url: `http://127.0.0.1:${relay.port}`, timeoutMs: 5_000 });
  const following: AbortController[] = [];
  let frozen = false;

  return {
    client,
    freeze() {
      frozen = true;
      corrosion.child.kill('SIGSTOP');
    },
    thaw() {
      frozen = false;
      corrosion.child.kill('SIGCONT');
    },
    async restart() {
      await corrosion.stop();
      corrosion = await runAgent(dir);
    },
    /** Inserts an app with one started machine (and its service) per id. */
    async writeApp(app: string, machineIds: string[]) {
      await client.transaction([
        ['INSERT INTO apps (name, org) VALUES (?, ?)', [app, 'personal']],
        ...machineIds.flatMap((id) => {
          const cells = machineCells({ id, app });
          return [
            [
              'INSERT INTO machines (id, app, state, private_addr, region, host_id, instance_id) VALUES (?, ?, ?, ?, ?, ?, ?)',
              cells.machine,
            ],
            [
              'INSERT INTO services (machine_id, internal_port, app, protocol, ports, handlers, concurrency, autostart, autostop, min_machines_running) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
              cells.service,
            ],
          ] as [string, unknown[]][];
        }),
      ]);
    },
    /** A Catalog following the agent, once every stream is attached. */
    async follow(options: Partial<CatalogOptions> = {}): Promise<Catalog> {
      const catalog = new Catalog({
        domain: 'fleet.test',
        logger: quiet,
        region: 'ams',
        ...options,
      });
      const controller = new AbortController();
      following.push(controller);
      void catalog.follow(client, controller.signal);
      await until(
        'the catalog ready',
        () => catalog.ready,
        (ready) => ready,
      );
      return catalog;
    },
    /** Stops following (between tests). */
    unfollow() {
      if (frozen) this.thaw();
      for (const controller of following.splice(0)) controller.abort();
    },
    async stop() {
      this.unfollow();
      await client.close();
      await corrosion.stop();
      await relay.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The process's OpenTelemetry metrics as production installs them (@fleet/service), scraped in
 * the Prometheus text format. Install before constructing the Catalog whose metrics are read.
 */
export async function scrapeMetrics() {
  const exported = startMetrics('catalog-test');
  const server: Server = createServer((request, response) => exported.handle(request, response));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    /** The value of `name` whose labels include `labels` (undefined when absent). */
    async sample(name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      for (const line of text.split('\n')) {
        const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)/.exec(line);
        if (match === null || match[1] !== name) continue;
        const found = Object.fromEntries(
          [...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map(([, key, value]) => [key, value]),
        );
        if (Object.entries(labels).every(([key, value]) => found[key] === value))
          return Number(match[3]);
      }
      return undefined;
    },
    async stop() {
      await new Promise((resolve) => server.close(resolve));
      await exported.shutdown();
    },
  };
}
