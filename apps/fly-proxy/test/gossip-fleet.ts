import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CorrosionClient } from '@fleet/corrosion-client';
import { type ServerProcess, serverMain, startServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { freePort, startMachine } from './relay-fixture.js';

const corrosionMain = serverMain('@fleet/corrosion');
const proxyMain = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');
const quiet = { ...process.env, LOG_LEVEL: 'error' };

/** The services row of a machine that takes HTTP on port 80. */
export const httpService = JSON.stringify([{ port: 80, handlers: ['http'] }]);

/**
 * A fleet of real processes for the tests that need more than one host: corrosion agents joined
 * in one gossip cluster (each with its own database), proxies on them, and machines (HTTP servers
 * answering with their name). Everything it starts, and its directory with the fleet key, goes
 * in `stop()`, in reverse order.
 */
export interface GossipFleet {
  readonly dir: string;
  /** The fleet key file every agent's gossip (and a proxy given it) authenticates with. */
  readonly keyFile: string;
  /** An agent on a free gossip port; it joins the cluster through `bootstrap` when given. */
  agent(name: string, bootstrap?: ServerProcess): Promise<ServerProcess>;
  /** A fly-proxy on `agent` (domain fleet.test, its own state directory) with `args` added. */
  proxy(agent: ServerProcess, args: string[]): Promise<ServerProcess>;
  /** A machine answering `{ name, url, body, headers }`; `addr` is its private address. */
  machine(name: string): Promise<{ addr: string }>;
  /** A corrosion client of `agent`'s API, closed by `stop()`. */
  client(agent: ServerProcess): CorrosionClient;
  stop(): Promise<void>;
}

export function gossipFleet(name: string): GossipFleet {
  const dir = mkdtempSync(join(tmpdir(), `fleet-${name}-`));
  const keyFile = join(dir, 'fleet.key');
  writeFileSync(keyFile, `${name}-fleet-key-0123456789abcdef`.slice(0, 32));
  const processes: ServerProcess[] = [];
  const servers: Server[] = [];
  const clients: CorrosionClient[] = [];
  const gossipPorts = new Map<ServerProcess, number>();

  const start = async (args: string[], listeners: string[]) => {
    const started = await startServerProcess({
      command: process.execPath,
      args,
      listeners,
      env: quiet,
    });
    processes.push(started);
    return started;
  };

  return {
    dir,
    keyFile,
    async agent(agentName, bootstrap) {
      const gossip = await freePort();
      const peer = bootstrap === undefined ? undefined : gossipPorts.get(bootstrap);
      const agent = await start(
        [
          ...[corrosionMain, 'agent', '--db', join(dir, `${agentName}.db`)],
          ...['--api-addr', '127.0.0.1:0', '--gossip-addr', `127.0.0.1:${gossip}`],
          ...['--gossip-key-file', keyFile],
          ...(peer === undefined ? [] : ['--bootstrap', `127.0.0.1:${peer}`]),
        ],
        ['api'],
      );
      gossipPorts.set(agent, gossip);
      return agent;
    },
    proxy(agent, args) {
      const api = present(agent.urls.api, "the agent's API URL");
      return start(
        [
          ...[proxyMain, '--listen', '127.0.0.1:0', '--corrosion-url', api],
          ...['--domain', 'fleet.test', '--state-dir', join(dir, `proxy-${processes.length}`)],
          ...args,
        ],
        ['proxy', 'admin'],
      );
    },
    async machine(machineName) {
      const { server, addr } = await startMachine(machineName);
      servers.push(server);
      return { addr };
    },
    client(agent) {
      const client = new CorrosionClient({ url: present(agent.urls.api, "the agent's API URL") });
      clients.push(client);
      return client;
    },
    async stop() {
      for (const client of clients.splice(0)) await client.close();
      for (const started of processes.splice(0).reverse()) await started.stop();
      await Promise.all(
        servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))),
      );
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
