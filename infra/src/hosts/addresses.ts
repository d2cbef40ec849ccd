import assert from 'node:assert/strict';
import { present } from '@fleet/service/invariant';
import type { Topology } from '../topology/load.js';

/**
 * The harness's address plan, all inside 198.18.0.0/15 (RFC 2544's benchmarking range, never
 * routed on the internet): host n (from 0) of region r (from 0) is 198.18.<r+1>.<n+10>; the
 * router's side of every host link is 198.19.255.254; the operator's access link from the root
 * namespace is 198.19.255.1.
 */
export const wanPrefix = '198.18.0.0/15';
export const routerAddress = '198.19.255.254';
export const accessAddress = '198.19.255.1';

export interface HostAddress {
  id: string;
  region: string;
  address: string;
}

export function planAddresses(topology: Topology): HostAddress[] {
  const regionIndex = new Map(topology.regions.map((region, index) => [region.code, index]));
  const perRegion = new Map<string, number>();
  return topology.hosts.map((host) => {
    const index = perRegion.get(host.region) ?? 0;
    perRegion.set(host.region, index + 1);
    assert(index < 240, 'the schema bounds hosts at 64');
    return {
      id: host.id,
      region: host.region,
      address: `198.18.${present(regionIndex.get(host.region), `region ${host.region}`) + 1}.${index + 10}`,
    };
  });
}

/** A harness command naming an address it did not assign (typed error: operators make typos). */
export class ForeignAddressError extends Error {
  readonly code = 'WAN_ERR_FOREIGN_ADDRESS';
  constructor(address: string) {
    super(`${address} is not an address of this harness's hosts (${wanPrefix}): refused`);
  }
}

/**
 * Every address the harness assigns or targets goes through this: only those of the plan (and
 * the router's and access link's own) are accepted, so a bad topology or command can never touch
 * a real network.
 */
export function checkOwnAddress(address: string, plan: readonly HostAddress[]): string {
  const own = address === routerAddress || address === accessAddress;
  if (!own && !plan.some((host) => host.address === address))
    throw new ForeignAddressError(address);
  return address;
}
