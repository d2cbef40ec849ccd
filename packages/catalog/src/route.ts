import type { AppEntry, MachineEntry, RegionEntry, ServiceSpec } from './model.js';

/** What the proxy knows about a request that steers routing (Fly's routing controls). */
export interface RouteOptions {
  /** The edge port the request or connection came in on: picks the service listing it. */
  port?: number;
  /** Or the service by its internal port. Neither: the first service with an `http` handler. */
  internalPort?: number;
  /** `fly-prefer-region`: that region counts as local; others when it has no machine below hard. */
  preferRegion?: string;
  /** `fly-force-region`: only machines of that region. */
  forceRegion?: string;
  /** `fly-prefer-instance-id`: that machine first when it can take the request. */
  preferInstance?: string;
  /** `fly-force-instance-id`: only that machine. */
  forceInstance?: string;
  /** Machines not to pick (fly-replay `elsewhere`, or ones that already failed this request). */
  exclude?: readonly string[];
}

/** 0: under the soft limit; 1: between soft and hard; 2: at the hard limit (never a candidate). */
export type Band = 0 | 1 | 2;

export interface Candidate {
  machine: MachineEntry;
  service: ServiceSpec;
  band: Band;
  /** Measured RTT to the machine's host, or the estimate from the regions' distance. */
  rttMs: number;
  /** In the edge's region (or the preferred one). */
  local: boolean;
}

export type RouteDecision =
  | {
      kind: 'ok';
      /** The best candidate's machine (`candidates[0].machine`). */
      machine: MachineEntry;
      /** Best first; the proxy retries the next one when a machine cannot be reached. */
      candidates: Candidate[];
      /** Stopped or suspended machines with autostart, closest first: filled when no candidate is under its soft limit. */
      startable: MachineEntry[];
    }
  | { kind: 'no-app' }
  | {
      kind: 'no-machine';
      reason: string;
      /** True when routable machines exist but every one is at its hard limit (admission waits). */
      saturated: boolean;
      startable: MachineEntry[];
    };

export interface RouteContext {
  localRegion: RegionEntry | undefined;
  maxCandidates: number;
  rttBucketMs: number;
  nowTick: () => number;
}

const noMachines: MachineEntry[] = [];
/** Scores: group (local/remote), then band, then RTT bucket; a random fraction breaks ties. */
const groupWeight = 4 * 1e7;
/** A machine that refused a connection goes after every reachable one (still tried last). */
const unreachableWeight = 2 * groupWeight;
const bandWeight = 1e7;

/** The effective load of a machine: its local in-flight count, or a fresher remote report. */
export function loadOf(machine: MachineEntry, nowTick: () => number): number {
  if (machine.remoteLoad > machine.load && machine.remoteUntilTick > nowTick())
    return machine.remoteLoad;
  return machine.load;
}

export function bandOf(load: number, service: ServiceSpec): Band {
  const { softLimit, hardLimit } = service.concurrency;
  return load < softLimit ? 0 : load < hardLimit ? 1 : 2;
}

/** The machine's service the request came in on. */
export function serviceFor(
  services: readonly ServiceSpec[],
  options: RouteOptions,
): ServiceSpec | undefined {
  for (const spec of services) {
    if (options.internalPort !== undefined) {
      if (spec.internalPort === options.internalPort) return spec;
    } else if (options.port !== undefined) {
      for (const port of spec.ports) if (port.port === options.port) return spec;
    } else if (spec.http) return spec;
  }
  return undefined;
}

/**
 * Fly's load balancing (reference/load-balancing): among started, healthy machines with the
 * service, prefer the lowest band, then the closest host; leave the region only when no local
 * machine is below its hard limit; random among equals. One pass over the app's machines keeps
 * the best `maxCandidates` by score, without sorting the rest.
 */
export function selectMachines(
  entry: AppEntry,
  options: RouteOptions,
  context: RouteContext,
): RouteDecision {
  const machines = entry.machines;
  const k = context.maxCandidates;
  const scores: number[] = [];
  const picked: Candidate[] = [];
  const local = context.localRegion;
  let saturated = 0;
  let nowTick = -1;
  for (const machine of machines) {
    if (machine.state !== 'started' || machine.critical !== null || machine.privateAddr === null)
      continue;
    if (options.forceInstance !== undefined && machine.id !== options.forceInstance) continue;
    if (options.forceRegion !== undefined && machine.regionEntry.code !== options.forceRegion)
      continue;
    if (options.exclude?.includes(machine.id)) continue;
    if (machine.hostEntry.status === 'down') continue;
    const service = serviceFor(machine.services, options);
    if (service === undefined) continue;
    const band = bandOf(loadOf(machine, context.nowTick), service);
    if (band === 2) {
      saturated++;
      continue;
    }
    const host = machine.hostEntry;
    const rttMs = host.rttMs >= 0 ? host.rttMs : machine.regionEntry.estimatedRttMs;
    const isLocal = machine.regionEntry === local;
    let score =
      options.preferInstance === machine.id
        ? -1
        : (isLocal ? 0 : groupWeight) +
          band * bandWeight +
          Math.min(Math.floor(rttMs / context.rttBucketMs), bandWeight - 1) +
          Math.random();
    if (machine.unreachableUntilTick !== 0) {
      if (nowTick === -1) nowTick = context.nowTick();
      if (machine.unreachableUntilTick > nowTick) score += unreachableWeight;
    }
    const worst = picked.length === k ? scores[k - 1] : undefined;
    if (worst !== undefined && score >= worst) continue;
    let at = picked.length === k ? k - 1 : picked.length;
    while (at > 0) {
      const previousScore = scores[at - 1];
      const previous = picked[at - 1];
      if (previousScore === undefined || previous === undefined || previousScore <= score) break;
      scores[at] = previousScore;
      picked[at] = previous;
      at--;
    }
    scores[at] = score;
    picked[at] = { machine, service, band, rttMs, local: isLocal };
  }
  const best = picked[0];
  if (best !== undefined) {
    const startable = best.band === 0 ? noMachines : startableMachines(entry, options, context);
    return { kind: 'ok', machine: best.machine, candidates: picked, startable };
  }
  if (!entry.known && machines.length === 0) return { kind: 'no-app' };
  return {
    kind: 'no-machine',
    reason: noMachineReason(entry, options, saturated),
    saturated: saturated > 0,
    startable: startableMachines(entry, options, context),
  };
}

/** Stopped or suspended machines whose service autostarts, closest first (Fly's autostart). */
function startableMachines(
  entry: AppEntry,
  options: RouteOptions,
  context: RouteContext,
): MachineEntry[] {
  const found: { machine: MachineEntry; rttMs: number }[] = [];
  for (const machine of entry.machines) {
    if (machine.state !== 'stopped' && machine.state !== 'suspended') continue;
    // A down host cannot start anything: its machines are not offered to autostart either.
    if (machine.hostEntry.status === 'down') continue;
    if (options.forceInstance !== undefined && machine.id !== options.forceInstance) continue;
    if (options.forceRegion !== undefined && machine.regionEntry.code !== options.forceRegion)
      continue;
    if (!serviceFor(machine.services, options)?.autostart) continue;
    const host = machine.hostEntry;
    const rttMs = host.rttMs >= 0 ? host.rttMs : machine.regionEntry.estimatedRttMs;
    found.push({ machine, rttMs: machine.regionEntry === context.localRegion ? -1 : rttMs });
  }
  if (found.length === 0) return noMachines;
  found.sort((a, b) => a.rttMs - b.rttMs);
  return found.slice(0, context.maxCandidates).map(({ machine }) => machine);
}

function noMachineReason(entry: AppEntry, options: RouteOptions, saturated: number): string {
  const app = entry.name;
  if (saturated > 0)
    return `app ${app}: every machine that could take the request is at its hard limit (${saturated})`;
  if (options.forceInstance !== undefined)
    return `app ${app}: machine ${options.forceInstance} cannot take the request (fly-force-instance-id)`;
  if (options.forceRegion !== undefined)
    return `app ${app}: no machine in region ${options.forceRegion} can take the request (fly-force-region)`;
  const states = new Map<string, number>();
  let started = 0;
  for (const machine of entry.machines) {
    const state = machine.state || 'unknown';
    states.set(state, (states.get(state) ?? 0) + 1);
    if (machine.state === 'started') started++;
  }
  if (states.size === 0) return `app ${app} has no machines`;
  const counts = [...states].map(([state, count]) => `${count} ${state}`).join(', ');
  const why = started > 0 ? `; the ${started} started without a healthy service for it` : '';
  return `app ${app} has no started machine to take the request (${counts}${why})`;
}
