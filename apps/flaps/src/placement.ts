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
  return best[Math.floor(random() * best.length)]!;
}

interface Reservation {
  placementId: string;
  hostId: string;
  memoryMb: number;
  /** When the create finished (its machine is in corrosion from then on). */
  doneAt?: number;
}

/**
 * Placements decided but not yet visible in corrosion, by placement id (the app by default):
 * thousands of parallel creates read the same counts, and without this they would all choose
 * the host that looked emptiest. A reservation counts against its host for every read of
 * corrosion that began before its create finished.
 */
export class PlacementTracker {
  #reservations: Reservation[] = [];

  /** Counts as corrosion read them at `readAt`, plus the reservations that read cannot show. */
  view(
    placementId: string,
    hosts: WorkerHost[],
    sameGroup: Map<string, number>,
    readAt: number,
  ): { hosts: WorkerHost[]; sameGroup: Map<string, number> } {
    this.#expire();
    const group = new Map(sameGroup);
    const reservedMb = new Map<string, number>();
    for (const reservation of this.#reservations) {
      if (reservation.doneAt !== undefined && reservation.doneAt < readAt) continue;
      reservedMb.set(
        reservation.hostId,
        (reservedMb.get(reservation.hostId) ?? 0) + reservation.memoryMb,
      );
      if (reservation.placementId === placementId) {
        group.set(reservation.hostId, (group.get(reservation.hostId) ?? 0) + 1);
      }
    }
    return {
      hosts: hosts.map((host) => ({
        ...host,
        memory_mb_reserved: host.memory_mb_reserved + (reservedMb.get(host.id) ?? 0),
      })),
      sameGroup: group,
    };
  }

  /** Holds a placement until its create finished; call the returned function then. */
  reserve(placementId: string, hostId: string, memoryMb: number): () => void {
    const reservation: Reservation = { placementId, hostId, memoryMb };
    this.#reservations.push(reservation);
    return () => {
      reservation.doneAt = Date.now();
    };
  }

  /** In-flight placements by placement id and host (for `/v1/platform/placements`). */
  pending(): { placement_id: string; host_id: string; count: number }[] {
    const counts = new Map<string, number>();
    for (const { placementId, hostId, doneAt } of this.#reservations) {
      if (doneAt !== undefined) continue;
      const key = `${placementId}\0${hostId}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return [...counts].map(([key, count]) => {
      const [placement_id, host_id] = key.split('\0') as [string, string];
      return { placement_id, host_id, count };
    });
  }

  /** Finished reservations older than any read still in flight can go (a minute is ample). */
  #expire(): void {
    const horizon = Date.now() - 60_000;
    this.#reservations = this.#reservations.filter(
      (reservation) => reservation.doneAt === undefined || reservation.doneAt > horizon,
    );
  }
}
