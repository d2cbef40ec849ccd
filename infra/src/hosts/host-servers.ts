import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CorrosionClient } from '@fleet/corrosion-client';
import { type ServerProcess, startServerProcess } from '@fleet/service';
import { imagesDir, type ServerName, serverMain } from '../launcher/paths.js';
import { localRootsDir } from '../machine-roots.js';
import { localMachineUsers } from '../machine-users.js';
import type { TopologyHost } from '../topology/load.js';
import { inNamespace } from './netns.js';
import { hostPorts } from './ports.js';

export interface HostSpec extends TopologyHost {
  address: string;
  namespace: string;
}

export interface HostEnvironment {
  stateDir: string;
  /** Tokens, handed to servers in their environment (a command line is visible to `ps`). */
  env: NodeJS.ProcessEnv;
  /** The fleet key (gossip MACs, backhaul tokens), a file every host holds. */
  fleetKeyFile: string;
  /** Gossip addresses of every host, for corrosion's `--bootstrap`. */
  gossipAddresses: string[];
  domain: string;
  startTimeoutMs: number;
  corrosionToken: string;
}

export interface HostUrls {
  corrosion: string;
  flyd?: string;
  backhaul?: string;
  flaps?: string;
  proxy?: string;
}

export interface RunningHost {
  spec: HostSpec;
  urls: HostUrls;
  servers: ServerProcess[];
  /** Stops its servers in reverse start order (flyd stops its machines before corrosion goes). */
  stop(): Promise<void>;
}

export const hostUrl = (host: HostSpec, port: number) => `http://${host.address}:${port}`;

/**
 * Starts one host's servers inside its namespace, in order: corrosion (joining the others
 * through the gossip addresses), then on a worker flyd and the backhaul fly-proxy (whose
 * address is registered in the host's `hosts` row), flaps on the API host, an edge fly-proxy on
 * an edge. Every server listens on the host's own address, so that address is its identity on
 * the wire. If a server fails to start, those already started are stopped.
 */
export async function startHost(
  host: HostSpec,
  environment: HostEnvironment,
): Promise<RunningHost> {
  const hostDir = join(environment.stateDir, host.id);
  mkdirSync(join(hostDir, 'logs'), { recursive: true });
  const servers: ServerProcess[] = [];
  const stop = async () => {
    for (const server of [...servers].reverse()) await server.stop(15_000);
  };
  const start = async (name: ServerName, logName: string, args: string[], listeners: string[]) => {
    const server = await startServerProcess({
      ...inNamespace(host.namespace, process.execPath, [serverMain(name), ...args]),
      env: environment.env,
      listeners,
      logFile: join(hostDir, 'logs', `${logName}.log`),
      startTimeoutMs: environment.startTimeoutMs,
      ownProcessGroup: true,
    });
    servers.push(server);
    return server.urls;
  };
  const at = (port: number) => `${host.address}:${port}`;
  const fleetKey = ['--fleet-key-file', environment.fleetKeyFile];
  try {
    const corrosion = hostUrl(host, hostPorts.corrosionApi);
    const peers = environment.gossipAddresses.filter((address) => address !== at(hostPorts.gossip));
    await start(
      'corrosion',
      'corrosion',
      [
        ...[
          'agent',
          '--db',
          join(hostDir, 'corrosion.db'),
          '--api-addr',
          at(hostPorts.corrosionApi),
        ],
        ...['--gossip-addr', at(hostPorts.gossip), '--gossip-key-file', environment.fleetKeyFile],
        ...(peers.length > 0 ? ['--bootstrap', peers.join(',')] : []),
      ],
      ['api', 'gossip'],
    );
    const urls: HostUrls = { corrosion };
    const common = ['--corrosion-url', corrosion, '--region', host.region];
    if (host.roles.includes('worker')) {
      urls.flyd = (
        await start(
          'flyd',
          'flyd',
          [
            ...['--listen', at(hostPorts.flyd), '--data-dir', join(hostDir, 'flyd'), ...common],
            ...localMachineUsers(join(hostDir, 'flyd')),
            ...localRootsDir(join(hostDir, 'flyd')),
            ...['--host-id', host.id, '--images-dir', imagesDir, ...fleetKey],
            '--stop-machines-on-exit', // a stopped fleet leaves no machine (nor its disks) behind
            ...(host.cpus ? ['--cpus', `${host.cpus}`] : []),
            ...(host.memoryMb ? ['--memory-mb', `${host.memoryMb}`] : []),
          ],
          ['api'],
        )
      ).api;
      const backhaul = await start(
        'fly-proxy',
        'fly-proxy-backhaul',
        [
          ...['--mode', 'backhaul', '--host-id', host.id, ...fleetKey, ...common],
          ...['--listen', at(hostPorts.backhaul), '--admin-listen', '127.0.0.1:0'],
          ...['--state-dir', join(hostDir, 'backhaul')],
        ],
        ['proxy'],
      );
      urls.backhaul = backhaul.proxy;
    }
    await registerHost(host, corrosion, environment.corrosionToken);
    if (host.api)
      urls.flaps = (
        await start(
          'flaps',
          'flaps',
          ['--listen', at(hostPorts.flaps), '--corrosion-url', corrosion, ...fleetKey],
          ['api'],
        )
      ).api;
    if (host.roles.includes('edge')) {
      const edge = await start(
        'fly-proxy',
        'fly-proxy-edge',
        [
          ...['--mode', 'edge', '--host-id', host.id, ...fleetKey, ...common],
          ...[
            '--listen',
            at(hostPorts.edge),
            '--admin-listen',
            '127.0.0.1:0',
            '--domain',
            environment.domain,
          ],
          ...['--state-dir', join(hostDir, 'edge')],
        ],
        ['proxy'],
      );
      urls.proxy = edge.proxy;
    }
    return { spec: host, urls, servers, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * The host's `hosts` row as far as no server writes it: an edge's row, a worker's backhaul
 * address, where edges look it up (flyd's upsert leaves that column alone), and every host's
 * gossip address. It is the fleet's
 * configuration, written through the host's own corrosion, as an operator's bootstrap would.
 */
async function registerHost(host: HostSpec, corrosionUrl: string, token: string): Promise<void> {
  const worker = host.roles.includes('worker');
  const corrosion = new CorrosionClient({ url: corrosionUrl, token, timeoutMs: 10_000 });
  try {
    await corrosion.transaction([
      [
        `INSERT INTO hosts (id, region, role, backhaul_addr, gossip_addr) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET backhaul_addr = excluded.backhaul_addr, gossip_addr = excluded.gossip_addr`,
        [
          host.id,
          host.region,
          worker ? 'worker' : 'edge',
          worker ? `${host.address}:${hostPorts.backhaul}` : null,
          // SWIM's address of this host's corrosion: flaps' host liveness matches members by it.
          `${host.address}:${hostPorts.gossip}`,
        ],
      ],
    ]);
  } finally {
    await corrosion.close();
  }
}
