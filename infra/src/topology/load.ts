import { readFileSync } from 'node:fs';
import { present } from '@fleet/service/invariant';
import { Ajv, type ErrorObject } from 'ajv';
import { defaultRouteFactor, derivedLatencyMs } from './latency.js';
import { topologySchema } from './schema.js';

export type Role = 'edge' | 'worker';

export interface Region {
  code: string;
  name: string;
  lat: number;
  lon: number;
}

export interface TopologyHost {
  id: string;
  region: string;
  roles: Role[];
  cpus?: number;
  memoryMb?: number;
  /** The real server's address, for `host.js join` (the harness assigns 198.18.x.y). */
  address?: string;
  /** This host runs flaps (exactly one host of a topology does). */
  api: boolean;
}

export interface Link {
  /** One-way delay, applied to every packet in each direction. */
  latencyMs: number;
  /** Share of packets dropped, 0..1. */
  loss: number;
}

export interface Topology {
  name: string;
  regions: Region[];
  hosts: TopologyHost[];
  intraRegionLatencyMs: number;
  /** Every pair of regions, keyed by `pairKey` (both orders give the same key). */
  links: Map<string, Link>;
}

/** A topology file that is not valid, with one line per problem naming the key at fault. */
export class TopologyError extends Error {
  readonly code = 'TOPOLOGY_ERR_INVALID';
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`${source}: invalid topology:\n  ${problems.join('\n  ')}`);
  }
}

export const pairKey = (a: string, b: string) => (a < b ? `${a}-${b}` : `${b}-${a}`);

const ajv = new Ajv({ allErrors: true });
const validate = ajv.compile(topologySchema);

interface RawTopology {
  name?: string;
  route_factor?: number;
  intra_region_latency_ms?: number;
  regions: Region[];
  hosts: {
    id: string;
    region: string;
    roles: Role[];
    cpus?: number;
    memory_mb?: number;
    address?: string;
    api?: boolean;
  }[];
  links?: { between: [string, string]; latency_ms?: number; loss?: number }[];
}

export function loadTopologyFile(path: string): Topology {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new TopologyError(path, [(error as Error).message]);
  }
  return parseTopology(raw, path);
}

/** Validates a parsed topology document and fills in the defaults (latencies, the API host). */
export function parseTopology(raw: unknown, source = 'topology'): Topology {
  if (!validate(raw)) throw new TopologyError(source, (validate.errors ?? []).map(describe));
  const document = raw as RawTopology;
  const problems = crossCheck(document);
  if (problems.length > 0) throw new TopologyError(source, problems);
  const routeFactor = document.route_factor ?? defaultRouteFactor;
  const links = new Map<string, Link>();
  for (const [index, a] of document.regions.entries())
    for (const b of document.regions.slice(index + 1))
      links.set(pairKey(a.code, b.code), {
        latencyMs: derivedLatencyMs(a, b, routeFactor),
        loss: 0,
      });
  for (const link of document.links ?? []) {
    const key = pairKey(...link.between);
    const derived = present(links.get(key), `the link ${key}, checked to join two hosts`);
    links.set(key, {
      latencyMs: link.latency_ms ?? derived.latencyMs,
      loss: link.loss ?? derived.loss,
    });
  }
  const apiHost = document.hosts.find((host) => host.api) ?? firstEdge(document);
  return {
    name: document.name ?? source,
    regions: document.regions,
    hosts: document.hosts.map((host) => ({
      id: host.id,
      region: host.region,
      roles: host.roles,
      cpus: host.cpus,
      memoryMb: host.memory_mb,
      address: host.address,
      api: host.id === apiHost.id,
    })),
    intraRegionLatencyMs: document.intra_region_latency_ms ?? 0.2,
    links,
  };
}

function firstEdge(document: RawTopology) {
  return (
    document.hosts.find((host) => host.roles.includes('edge')) ??
    present(document.hosts[0], 'a host (the schema requires one)')
  );
}

function crossCheck(document: RawTopology): string[] {
  const problems: string[] = [];
  const regions = new Set<string>();
  for (const [index, region] of document.regions.entries()) {
    if (regions.has(region.code))
      problems.push(`/regions/${index}/code: region "${region.code}" is listed twice`);
    regions.add(region.code);
  }
  const ids = new Set<string>();
  for (const [index, host] of document.hosts.entries()) {
    if (ids.has(host.id)) problems.push(`/hosts/${index}/id: host "${host.id}" is listed twice`);
    ids.add(host.id);
    if (!regions.has(host.region))
      problems.push(`/hosts/${index}/region: no region "${host.region}" in /regions`);
  }
  if (document.hosts.filter((host) => host.api).length > 1)
    problems.push('/hosts: "api" is set on more than one host (flaps runs on one)');
  if (!document.hosts.some((host) => host.roles.includes('worker')))
    problems.push('/hosts: no host has the "worker" role (machines would have nowhere to run)');
  for (const [index, link] of (document.links ?? []).entries()) {
    for (const [side, code] of link.between.entries())
      if (!regions.has(code))
        problems.push(`/links/${index}/between/${side}: no region "${code}" in /regions`);
    if (link.between[0] === link.between[1])
      problems.push(`/links/${index}/between: a link joins two different regions`);
  }
  return problems;
}

function describe(error: ErrorObject): string {
  const at = error.instancePath || '/';
  if (error.keyword === 'additionalProperties')
    return `${at}: unknown key "${(error.params as { additionalProperty: string }).additionalProperty}"`;
  if (error.keyword === 'required')
    return `${at}: missing key "${(error.params as { missingProperty: string }).missingProperty}"`;
  return `${at}: ${error.message}`;
}
