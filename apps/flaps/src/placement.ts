import { present } from '@fleet/service/invariant';
import { flapsError } from './errors.js';
import { distanceKm, regionsOf } from './regions.js';

export interface WorkerHost {
  id: string;
  region: string;
  flyd_addr: string;
  machine_count: number;
  cpus: number;
  cpus_reserved: number;
  memory_mb: number;
  memory_mb_reserved: number;
}

export interface PlacementRequest {
  /** A region expression: `iad`, `iad,dfw`, `lhr,eu`, `any`. */
  region?: string;
  memoryMb: number;
  /** Machines of the same app (or placement group) per host, as corrosion had them. */
  sameGroup: Map<string, number>;
}

/**
 * Picks the worker for a new machine among ready workers in the requested regions with memory
 * for it: the fewest machines of the same app (or placement group) first, then the most free
 * memory, then at random. No room → insufficient_capacity naming the nearest regions with room.
 */
export function placeMachine(
  hosts: WorkerHost[],
  request: PlacementRequest,
  random: () => number = Math.random,
): WorkerHost {
  const free = (host: WorkerHost) => host.memory_mb - host.memory_mb_reserved;
  const roomy = hosts.filter((host) => free(host) >= request.memoryMb);
  const allowed = regionsOf(request.region);
  const candidates = allowed ? roomy.filter((host) => allowed.has(host.region)) : roomy;
  if (candidates.length === 0) {
    const wanted = allowed ? [...allowed] : [];
    const nearness = (region: string) =>
      Math.min(...wanted.map((from) => distanceKm(from, region)), Number.MAX_VALUE);
    const elsewhere = [...new Set(roomy.map((host) => host.region))].sort(
      (a, b) => nearness(a) - nearness(b) || a.localeCompare(b),
    );
    const where = allowed ? `region ${request.region}` : 'any region';
    const hint =
      elsewhere.length > 0
        ? `nearest regions with room: ${elsewhere.slice(0, 5).join(', ')}`
        : 'no region has room';
    throw flapsError(
      'FLAPS_ERR_NO_CAPACITY',
      `insufficient_capacity: no worker in ${where} has room for ${request.memoryMb} MB (${hint})`,
    );
  }
  const group = (host: WorkerHost) => request.sameGroup.get(host.id) ?? 0;
  const fewest = Math.min(...candidates.map(group));
  const spread = candidates.filter((host) => group(host) === fewest);
  const most = Math.max(...spread.map(free));
  const best = spread.filter((host) => free(host) === most);
  return present(best[Math.floor(random() * best.length)], 'a candidate with the most room');
}

interface Group {
  /** Machines of the group per host: corrosion's count when the burst began, plus placements since. */
  counts: Map<string, number>;
  inFlight: number;
  lastActivity: number;
}

/** How long after its last placement a group keeps its own counts before reading corrosion's. */
const quietMs = 2_000;

/**
 * Placements by placement id (the app by default), kept in memory across concurrent requests:
 * thousands of parallel creates read the same counts from corrosion, and without this they would
 * all choose the host that looked emptiest. While a group is busy (placements in flight, or one
 * in the last 2 s) its counts are this tracker's own — corrosion's count when the burst began
 * plus every placement since — so no placement is missed or counted twice; once it is quiet,
 * corrosion is the truth again (machines other flaps instances placed, or destroyed).
 */
export class PlacementTracker {
  readonly #groups = new Map<string, Group>();
  /** Memory of creates in flight per host (not yet in the host's published reservations). */
  readonly #inFlightMb = new Map<string, number>();
  #sweptAt = 0;

  /**
   * `groupsMax` bounds the groups kept at once; quiet ones are dropped as they are no longer
   * needed (corrosion is their truth again), so only that many bursts in flight at the same
   * moment could reach it. `now` is the clock (tests give their own).
   */
  constructor(
    readonly groupsMax = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Groups kept (busy ones, and quiet ones not yet swept). */
  get size(): number {
    return this.#groups.size;
  }

  /**
   * The hosts and same-group counts a placement decides on. A dry run reads the group without
   * keeping one for it: only placements that reserve are remembered.
   */
  view(
    placementId: string,
    hosts: WorkerHost[],
    corrosionCounts: Map<string, number>,
    { dryRun = false } = {},
  ): { hosts: WorkerHost[]; sameGroup: Map<string, number> } {
    const now = this.now();
    let group = this.#groups.get(placementId);
    if (!group || this.#quiet(group, now)) {
      group = { counts: new Map(corrosionCounts), inFlight: 0, lastActivity: now };
      if (!dryRun) this.#keep(placementId, group, now);
    }
    return {
      hosts: hosts.map((host) => ({
        ...host,
        memory_mb_reserved: host.memory_mb_reserved + (this.#inFlightMb.get(host.id) ?? 0),
      })),
      sameGroup: new Map(group.counts),
    };
  }

  #quiet(group: Group, now: number): boolean {
    return group.inFlight === 0 && now - group.lastActivity > quietMs;
  }

  /** Keeps a new group, dropping quiet ones first (at most once per quiet period, or when full). */
  #keep(placementId: string, group: Group, now: number): void {
    if (now - this.#sweptAt > quietMs || this.#groups.size >= this.groupsMax) {
      this.#sweptAt = now;
      for (const [id, kept] of this.#groups) if (this.#quiet(kept, now)) this.#groups.delete(id);
    }
    if (!this.#groups.has(placementId) && this.#groups.size >= this.groupsMax) {
      throw flapsError(
        'FLAPS_ERR_OVERLOADED',
        `${this.groupsMax} placement groups are placing machines at once; retry shortly`,
      );
    }
    this.#groups.set(placementId, group);
  }

  /**
   * Counts a placement at once (call right after `view`, with no await between); the returned
   * function ends it: `ok` false takes it back (the create failed).
   */
  reserve(placementId: string, hostId: string, memoryMb: number): (ok: boolean) => void {
    const group = present(
      this.#groups.get(placementId),
      `the view() before reserve() of ${placementId}`,
    );
    group.counts.set(hostId, (group.counts.get(hostId) ?? 0) + 1);
    group.inFlight++;
    group.lastActivity = this.now();
    this.#inFlightMb.set(hostId, (this.#inFlightMb.get(hostId) ?? 0) + memoryMb);
    let ended = false;
    return (ok) => {
      if (ended) return;
      ended = true;
      group.inFlight--;
      group.lastActivity = this.now();
      if (!ok) group.counts.set(hostId, (group.counts.get(hostId) ?? 1) - 1);
      this.#inFlightMb.set(hostId, (this.#inFlightMb.get(hostId) ?? memoryMb) - memoryMb);
    };
  }

  /** Placements in flight per placement id (for `/v1/platform/placements`). */
  pending(): { placement_id: string; in_flight: number }[] {
    return [...this.#groups]
      .filter(([, group]) => group.inFlight > 0)
      .map(([placementId, group]) => ({ placement_id: placementId, in_flight: group.inFlight }));
  }
}
