/** SWIM timings for a cluster size, scaled as foca's `Config::new_wan` scales them. */
export interface SwimConfig {
  probePeriodMs: number;
  /** How long a direct probe waits for its ACK before asking others (indirect probes). */
  probeRttMs: number;
  indirectProbes: number;
  /** Times each membership update is piggybacked before it is considered spread. */
  maxTransmissions: number;
  suspectToDownMs: number;
  /** Down members are forgotten after this (a forgotten node that comes back is simply new). */
  removeDownAfterMs: number;
  /** Announce to this many members (down ones included, which heals partitions) this often. */
  announceEveryMs: number;
  announceMembers: number;
  /** Gossip pending updates to this many members this often. */
  gossipEveryMs: number;
  gossipMembers: number;
}

/**
 * foca's WAN preset is a 5 s probe period; everything else keeps its ratio to the period, so a
 * test cluster probing every 100 ms behaves like a WAN one, only faster. Transmissions grow with
 * log10(n + 1), suspicion with log10(n).
 */
export function swimConfig(clusterSize: number, probePeriodMs = 5_000): SwimConfig {
  const size = Math.max(1, clusterSize);
  const scale = probePeriodMs / 5_000;
  return {
    probePeriodMs,
    probeRttMs: 3_000 * scale,
    indirectProbes: 3,
    maxTransmissions: Math.min(255, Math.max(1, Math.floor(Math.log10(size + 1) * 4))),
    suspectToDownMs: Math.max(1, Math.log10(size)) * 6 * probePeriodMs,
    removeDownAfterMs: Math.max(15_000 * scale, 30 * probePeriodMs),
    announceEveryMs: 60_000 * scale,
    announceMembers: 2,
    gossipEveryMs: 500 * scale,
    gossipMembers: 4,
  };
}
