import { mkdirSync } from 'node:fs';
import { CorrosionClient } from '@fleet/corrosion-client';
import { lockState, type StateLock, unmountUnder } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { fleetLockPath } from '../launcher/fleet.js';
import { type FleetSecrets, fleetKeyFile, loadOrCreateSecrets } from '../launcher/secrets.js';
import type { Topology } from '../topology/load.js';
import { type Network, startNetwork } from '../wan/network.js';
import {
  type HostEnvironment,
  type HostSpec,
  type RunningHost,
  startHost,
} from './host-servers.js';
import { signalNamespace } from './netns.js';
import { hostPorts } from './ports.js';

export interface TopologyFleetOptions {
  topology: Topology;
  stateDir: string;
  domain: string;
  startTimeoutMs: number;
}

export interface TopologyFleet {
  topology: Topology;
  network: Network;
  secrets: FleetSecrets;
  /** Host id → its running servers (absent while the host is killed). */
  hosts: Map<string, RunningHost>;
  specs: HostSpec[];
  /** The Machines API (flaps on the API host). */
  apiUrl: string;
  lock: StateLock;
  /** A host's processes: every one in its namespace (the machines flyd runs too). */
  killHost(id: string): void;
  pauseHost(id: string): void;
  resumeHost(id: string): void;
  /** Kills what runs in the host's namespace and starts its servers again. */
  restartHost(id: string): Promise<void>;
  /** Stops every host (workers' machines first), the WAN, and removes every namespace and link. */
  stop(): Promise<void>;
}

/** An unknown host id in a command (typed: operators make typos). */
export class UnknownHostError extends Error {
  readonly code = 'WAN_ERR_UNKNOWN_HOST';
  constructor(id: string, known: string[]) {
    super(`no host "${id}" in this topology (hosts: ${known.join(', ')})`);
  }
}

/**
 * Boots a topology's fleet on this machine: the emulated WAN and a namespace per host, then every
 * host's corrosion (one gossip cluster), the workers' flyd and backhaul fly-proxy, flaps, the
 * edges' fly-proxy; writes the topology's regions into corrosion (the catalog's distances).
 */
export async function startTopologyFleet(options: TopologyFleetOptions): Promise<TopologyFleet> {
  mkdirSync(options.stateDir, { recursive: true });
  const lock = lockState(fleetLockPath(options.stateDir), 'fleet launcher (topology)');
  let network: Network | undefined;
  const hosts = new Map<string, RunningHost>();
  const stopAll = async () => {
    // Workers first (flyd stops its machines), the API and edges after, corrosion last per host.
    const ordered = [...hosts.values()].sort(
      (a, b) => Number(b.spec.roles.includes('worker')) - Number(a.spec.roles.includes('worker')),
    );
    await Promise.all(ordered.map((host) => host.stop()));
    hosts.clear();
    await network?.stop(); // kills what is left in the hosts' namespaces (a killed host's machines)
    unmountUnder(options.stateDir); // and the disks such machines' flyd kept mounted
    lock.release();
  };
  try {
    network = await startNetwork(options.topology, options.stateDir);
    const secrets = loadOrCreateSecrets(options.stateDir);
    const specs: HostSpec[] = options.topology.hosts.map((host) => {
      const placed = present(
        present(network, 'the network').hosts.find((candidate) => candidate.id === host.id),
        `host ${host.id} placed in the network`,
      );
      return { ...host, address: placed.address, namespace: placed.namespace };
    });
    const environment: HostEnvironment = {
      stateDir: options.stateDir,
      env: {
        ...process.env,
        FLEET_API_TOKEN: secrets.apiToken,
        FLYD_TOKEN: secrets.flydToken,
        CORROSION_TOKEN: secrets.corrosionToken,
      },
      fleetKeyFile: fleetKeyFile(options.stateDir),
      gossipAddresses: specs.map((spec) => `${spec.address}:${hostPorts.gossip}`),
      domain: options.domain,
      startTimeoutMs: options.startTimeoutMs,
      corrosionToken: secrets.corrosionToken,
    };
    const startOne = async (spec: HostSpec) => {
      hosts.set(spec.id, await startHost(spec, environment));
    };
    // Workers and the API host first: edges ask flaps for autostart only when it is up.
    const apiHost = present(
      specs.find((spec) => spec.api),
      'the API host (the topology schema requires one)',
    );
    await Promise.all(
      specs.filter((spec) => spec.roles.includes('worker') || spec.api).map(startOne),
    );
    await Promise.all(specs.filter((spec) => !hosts.has(spec.id)).map(startOne));
    await writeRegions(
      options.topology,
      present(hosts.get(apiHost.id), 'the API host').urls.corrosion,
      secrets.corrosionToken,
    );
    const apiUrl = present(
      present(hosts.get(apiHost.id), 'the API host').urls.flaps,
      'its flaps URL',
    );
    lock.describe({ runId: network.runId, api: apiUrl });
    const specOf = (id: string) => {
      const spec = specs.find((candidate) => candidate.id === id);
      if (!spec)
        throw new UnknownHostError(
          id,
          specs.map((candidate) => candidate.id),
        );
      return spec;
    };
    return {
      topology: options.topology,
      network,
      secrets,
      hosts,
      specs,
      apiUrl,
      lock,
      killHost: (id) => {
        signalNamespace(specOf(id).namespace, 'SIGKILL');
        hosts.delete(id);
      },
      pauseHost: (id) => void signalNamespace(specOf(id).namespace, 'SIGSTOP'),
      resumeHost: (id) => void signalNamespace(specOf(id).namespace, 'SIGCONT'),
      restartHost: async (id) => {
        const spec = specOf(id);
        signalNamespace(spec.namespace, 'SIGKILL');
        await hosts.get(id)?.stop();
        hosts.delete(id);
        await startOne(spec);
      },
      stop: once(stopAll),
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
/** The topology's regions in corrosion: flaps lists them, the catalog measures distance by them. */
async function writeRegions(
  topology: Topology,
  corrosionUrl: string,
  token: string,
): Promise<void> {
  const corrosion = new CorrosionClient({ url: corrosionUrl, token, timeoutMs: 10_000 });
  try {
    await corrosion.transaction(
      topology.regions.map((region) => [
        `INSERT INTO regions (code, name, lat, lon) VALUES (?, ?, ?, ?)
         ON CONFLICT (code) DO UPDATE SET name = excluded.name, lat = excluded.lat, lon = excluded.lon`,
        [region.code, region.name, region.lat, region.lon],
      ]),
    );
  } finally {
    await corrosion.close();
  }
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => {
    running ??= fn();
    return running;
  };
}
