import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { derivedLatencyMs, greatCircleKm } from '../src/topology/latency.js';
import { loadTopologyFile, pairKey, parseTopology, TopologyError } from '../src/topology/load.js';

// Topology files: the shipped ones load; a bad one is refused with the key at fault named; a
// latency not given comes from the regions' great-circle distance.
const topologies = join(import.meta.dirname, '..', 'topologies');
const iad = { code: 'iad', name: 'Ashburn', lat: 38.94, lon: -77.46 };
const lhr = { code: 'lhr', name: 'London', lat: 51.47, lon: -0.45 };

const problems = (raw: unknown): string[] => {
  try {
    parseTopology(raw);
  } catch (error) {
    if (error instanceof TopologyError) return error.problems;
    throw error;
  }
  return [];
};

describe('topology files', () => {
  it('every shipped topology loads', () => {
    const files = readdirSync(topologies).filter((name) => name.endsWith('.json'));
    expect(files).toEqual(expect.arrayContaining(['one-host.json', 'three-regions.json']));
    for (const file of files)
      expect(loadTopologyFile(join(topologies, file)).hosts.length).toBeGreaterThan(0);
  });

  it('three-regions has an edge and two workers in each of iad, lhr, syd, flaps on one host', () => {
    const topology = loadTopologyFile(join(topologies, 'three-regions.json'));
    for (const region of ['iad', 'lhr', 'syd']) {
      const hosts = topology.hosts.filter((host) => host.region === region);
      expect(hosts.filter((host) => host.roles.includes('edge'))).toHaveLength(1);
      expect(hosts.filter((host) => host.roles.includes('worker'))).toHaveLength(2);
    }
    expect(topology.hosts.filter((host) => host.api).map((host) => host.id)).toEqual(['iad-e1']);
    expect(topology.links.get(pairKey('syd', 'lhr'))?.latencyMs).toBe(130); // given in the file
  });

  it('a latency not given is the great-circle distance over fibre, times the route factor', () => {
    expect(greatCircleKm(iad, lhr)).toBeGreaterThan(5800);
    expect(greatCircleKm(iad, lhr)).toBeLessThan(6000);
    const topology = parseTopology({
      regions: [iad, lhr],
      hosts: [{ id: 'w1', region: 'iad', roles: ['worker'] }],
    });
    const link = topology.links.get(pairKey('lhr', 'iad'))!;
    expect(link.latencyMs).toBe(derivedLatencyMs(iad, lhr));
    expect(link.latencyMs).toBeCloseTo((greatCircleKm(iad, lhr) / 200) * 1.5, 0);
    const direct = parseTopology({
      route_factor: 1,
      regions: [iad, lhr],
      hosts: [{ id: 'w1', region: 'iad', roles: ['worker'] }],
    });
    expect(direct.links.get(pairKey('iad', 'lhr'))!.latencyMs).toBeLessThan(link.latencyMs);
  });

  it('names the key at fault', () => {
    const host = { id: 'w1', region: 'iad', roles: ['worker'] };
    expect(problems({ regions: [iad], hosts: [{ ...host, colour: 'red' }] })).toEqual([
      '/hosts/0: unknown key "colour"',
    ]);
    expect(problems({ regions: [iad], hosts: [{ ...host, region: 'ord' }] })).toEqual([
      '/hosts/0/region: no region "ord" in /regions',
    ]);
    expect(problems({ regions: [{ ...iad, lat: 91 }], hosts: [host] })[0]).toMatch(
      /^\/regions\/0\/lat: /,
    );
    expect(problems({ regions: [iad], hosts: [host, host] })).toEqual([
      '/hosts/1/id: host "w1" is listed twice',
    ]);
    expect(problems({ regions: [iad], hosts: [{ ...host, roles: ['edge'] }] })[0]).toMatch(
      /worker/,
    );
    expect(
      problems({
        regions: [iad],
        hosts: [host],
        links: [{ between: ['iad', 'syd'], latency_ms: 3 }],
      }),
    ).toEqual(['/links/0/between/1: no region "syd" in /regions']);
    expect(problems({ hosts: [host] })).toEqual(['/: missing key "regions"']);
  });
});
