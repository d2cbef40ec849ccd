import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { present } from '@fleet/service/invariant';
import {
  accessAddress,
  checkOwnAddress,
  type HostAddress,
  planAddresses,
  routerAddress,
  wanPrefix,
} from '../hosts/addresses.js';
import { ip } from '../hosts/netns.js';
import {
  accessLink,
  hostNamespace,
  newRunId,
  recordRun,
  removeDeadRuns,
  removeRun,
  routerNamespace,
} from '../hosts/runs.js';
import type { Topology } from '../topology/load.js';
import { type Forwarder, type ForwarderConfig, startForwarder } from './forwarder.js';

export interface NetworkHost extends HostAddress {
  namespace: string;
}

export interface Network {
  runId: string;
  hosts: NetworkHost[];
  routerNamespace: string;
  forwarder: Forwarder;
  /** What the start removed of dead runs, one line each. */
  removedLeftovers: string[];
  /** Stops the forwarder, kills every process in the run's namespaces, removes them and the links. */
  stop(): Promise<void>;
}

/**
 * Builds the emulated WAN of a topology: one namespace per host, each joined by a veth link to
 * the router namespace, where policy routing sends every packet from a host of region R into
 * R's TUN device, read by the forwarder (delay, loss, partitions), which writes it back for the
 * kernel to deliver. An access link joins the root namespace to the router (no WAN delay), so
 * the operator's shell reaches every host's address.
 */
export async function startNetwork(topology: Topology, stateDir: string): Promise<Network> {
  const removedLeftovers = await removeDeadRuns();
  const runId = newRunId();
  recordRun(runId, stateDir);
  const router = routerNamespace(runId);
  const plan = planAddresses(topology);
  const hosts = plan.map((host) => ({ ...host, namespace: hostNamespace(runId, host.id) }));
  let forwarder: Forwarder | undefined;
  const stop = async () => {
    await forwarder?.stop();
    await removeRun(runId);
  };
  try {
    await ip('netns', 'add', router);
    await ip('-n', router, 'link', 'set', 'lo', 'up');
    await sysctls(router, [
      'net.ipv4.ip_forward=1',
      'net.ipv4.conf.all.rp_filter=0',
      'net.ipv4.conf.default.rp_filter=0',
    ]);
    const tuns = Object.fromEntries(
      topology.regions.map((region, index) => [region.code, `wan${index}`]),
    );
    const configFile = join(stateDir, 'wan-forwarder.json');
    writeFileSync(configFile, JSON.stringify(forwarderConfig(topology, hosts, tuns)));
    forwarder = await startForwarder(router, configFile, join(stateDir, 'wan.sock'));
    for (const [index, region] of topology.regions.entries()) {
      const tun = present(tuns[region.code], `the tunnel of ${region.code}`);
      await ip('-n', router, 'link', 'set', tun, 'up');
      await ip('-n', router, 'route', 'add', 'default', 'dev', tun, 'table', `${100 + index}`);
    }
    const regionTable = new Map(
      topology.regions.map((region, index) => [region.code, 100 + index]),
    );
    for (const [index, host] of hosts.entries())
      await addHost(
        router,
        host,
        `h${index}`,
        present(regionTable.get(host.region), `region ${host.region}`),
        plan,
      );
    await addAccessLink(runId, router);
    return { runId, hosts, routerNamespace: router, forwarder, removedLeftovers, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function forwarderConfig(
  topology: Topology,
  hosts: NetworkHost[],
  tuns: Record<string, string>,
): ForwarderConfig {
  const links: ForwarderConfig['links'] = {};
  for (const [key, link] of topology.links)
    links[key] = { latency_ms: link.latencyMs, loss: link.loss };
  return {
    tuns,
    hosts: Object.fromEntries(
      hosts.map((host) => [host.address, { id: host.id, region: host.region }]),
    ),
    intra_region_latency_ms: topology.intraRegionLatencyMs,
    links,
  };
}

async function sysctls(namespace: string, settings: string[]): Promise<void> {
  await ip('netns', 'exec', namespace, 'sysctl', '-q', '-w', ...settings);
}

async function addHost(
  router: string,
  host: NetworkHost,
  link: string,
  table: number,
  plan: HostAddress[],
) {
  const address = checkOwnAddress(host.address, plan);
  await ip('netns', 'add', host.namespace);
  await ip('-n', host.namespace, 'link', 'set', 'lo', 'up');
  await ip(
    '-n',
    router,
    'link',
    'add',
    link,
    'type',
    'veth',
    'peer',
    'name',
    'wan0',
    'netns',
    host.namespace,
  );
  await ip('-n', router, 'addr', 'add', `${routerAddress}/32`, 'dev', link);
  await ip('-n', router, 'link', 'set', link, 'up');
  await ip('-n', router, 'route', 'add', `${address}/32`, 'dev', link);
  await ip('-n', router, 'rule', 'add', 'iif', link, 'lookup', `${table}`);
  await ip('-n', host.namespace, 'addr', 'add', `${address}/32`, 'dev', 'wan0');
  await ip('-n', host.namespace, 'link', 'set', 'wan0', 'up');
  await ip('-n', host.namespace, 'route', 'add', routerAddress, 'dev', 'wan0', 'scope', 'link');
  await ip('-n', host.namespace, 'route', 'add', wanPrefix, 'via', routerAddress, 'dev', 'wan0');
}

async function addAccessLink(runId: string, router: string): Promise<void> {
  const link = accessLink(runId);
  await ip('link', 'add', link, 'type', 'veth', 'peer', 'name', 'access', 'netns', router);
  await ip('-n', router, 'addr', 'add', `${routerAddress}/32`, 'dev', 'access');
  await ip('-n', router, 'link', 'set', 'access', 'up');
  await ip('-n', router, 'route', 'add', `${accessAddress}/32`, 'dev', 'access');
  await ip('addr', 'add', `${accessAddress}/32`, 'dev', link);
  await ip('link', 'set', link, 'up');
  await ip('route', 'add', routerAddress, 'dev', link, 'scope', 'link');
  await ip('route', 'add', wanPrefix, 'via', routerAddress, 'dev', link);
}
