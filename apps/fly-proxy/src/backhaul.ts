import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Candidate, MachineEntry } from '@fleet/catalog';

/**
 * The edge → worker hop. An edge never dials a machine on another host: it sends the request to
 * that host's backhaul fly-proxy (`--mode backhaul`, the `hosts.backhaul_addr` it registered),
 * naming the machine and its app in headers, with a token derived from the fleet key that every
 * host holds. The backhaul delivers it to the machine's private address on its own host only,
 * and answers with the machine's load so every edge's bands count every edge's traffic.
 */
export const backhaulHeaders = {
  machine: 'fly-backhaul-machine',
  app: 'fly-backhaul-app',
  auth: 'fly-backhaul-auth',
  load: 'fly-backhaul-load',
  /** On a CONNECT stream to a backhaul: `http` (an HTTP/1.1 exchange) or `tcp` (a machine's port). */
  stream: 'fly-backhaul-stream',
  /** On a `tcp` stream: the public port the connection came in on (picks the service). */
  port: 'fly-backhaul-port',
  /** On an HTTP request: the internal port of the service the edge chose. */
  service: 'fly-backhaul-service',
} as const;

/** The token a backhaul accepts: HMAC-SHA256 of a fixed label under the fleet key, hex. */
export function backhaulToken(fleetKey: Buffer): string {
  return createHmac('sha256', fleetKey).update('fleet-backhaul-v1').digest('hex');
}

/** Constant-time comparison of a presented token with the expected one. */
export function backhaulTokenMatches(presented: string | undefined, expected: string): boolean {
  if (presented === undefined || presented.length !== expected.length) return false;
  return timingSafeEqual(Buffer.from(presented), Buffer.from(expected));
}

/**
 * Where this edge sends a request for `candidate`'s service: the machine itself on this host
 * (`serviceAddress`), its host's backhaul on another.
 */
export function hopFor(
  candidate: Candidate,
  ownHostId: string | undefined,
): { address: string; viaBackhaul: boolean } | undefined {
  const { machine } = candidate;
  const remote = ownHostId !== undefined && machine.hostId !== '' && machine.hostId !== ownHostId;
  if (!remote) {
    const address = serviceAddress(machine, candidate.service.internalPort);
    return address === undefined ? undefined : { address, viaBackhaul: false };
  }
  const backhaul = machine.backhaulAddr;
  return backhaul === null ? undefined : { address: backhaul, viaBackhaul: true };
}

/**
 * Where `machine` takes its service of `internalPort`. A machine with an address of its own (a
 * network of its own, as a Fly machine's private address) listens on each service's internal
 * port there; one on its worker's loopback has a single port (`PORT`), which its `private_addr`
 * names, for every service.
 */
export function serviceAddress(machine: MachineEntry, internalPort: number): string | undefined {
  const address = machine.privateAddr;
  if (address === null) return undefined;
  const host = address.slice(0, address.lastIndexOf(':'));
  const loopback = host.startsWith('127.') || host === '[::1]' || host === 'localhost';
  return loopback ? address : `${host}:${internalPort}`;
}
