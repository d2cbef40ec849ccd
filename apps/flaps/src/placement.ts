import { flapsError } from './errors.js';

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
  region?: string;
  memoryMb: number;
}

/**
 * Picks the worker for a new machine: ready workers in the requested region (any region if none
 * is asked) with memory for it; the fewest machines wins, ties broken at random so parallel
 * creates spread out. No room → FLAPS_ERR_NO_CAPACITY naming the regions that have room.
 */
export function placeMachine(
  hosts: WorkerHost[],
  request: PlacementRequest,
  random: () => number = Math.random,
): WorkerHost {
  const roomy = hosts.filter(
    (host) => host.memory_mb - host.memory_mb_reserved >= request.memoryMb,
  );
  const candidates =
    request.region === undefined ? roomy : roomy.filter((host) => host.region === request.region);
  if (candidates.length === 0) {
    const elsewhere = [...new Set(roomy.map((host) => host.region))].sort();
    const where = request.region === undefined ? 'any region' : `region ${request.region}`;
    const hint =
      elsewhere.length > 0 ? `regions with room: ${elsewhere.join(', ')}` : 'no region has room';
    throw flapsError(
      'FLAPS_ERR_NO_CAPACITY',
      `insufficient_capacity: no worker in ${where} has room for ${request.memoryMb} MB (${hint})`,
    );
  }
  const fewest = Math.min(...candidates.map((host) => host.machine_count));
  const best = candidates.filter((host) => host.machine_count === fewest);
  return best[Math.floor(random() * best.length)]!;
}
