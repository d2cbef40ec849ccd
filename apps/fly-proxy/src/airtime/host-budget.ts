import type { HostLoad } from './host-load.js';

export type PressureReason = 'host_cpu' | 'host_network';

/** What the host may carry before Airtime shrinks the proxy's budget. */
export interface HostLimits {
  /** Busy share of the host's CPU (softirq included) above which the budget shrinks, 0..1. */
  cpuBusyRatioMax: number;
  /** The host interfaces' bytes per second (in + out) above which the budget shrinks. */
  networkBytesPerSecondMax: number;
  /** Under host pressure no app is squeezed below this (the proxy must still answer). */
  appFloorBytesPerSecond: number;
}

/** The proxy's budget: null while the host has headroom (no host-wide limit at all). */
export interface BudgetState {
  bytesPerSecond: number | null;
  pressure: PressureReason[];
  /** Samples in a row without pressure since the budget last shrank. */
  clearSamples: number;
}

export const unlimited: BudgetState = { bytesPerSecond: null, pressure: [], clearSamples: 0 };

/** Shrinks by at least this factor per sample under pressure, whatever the ratios say. */
const shrinkAtLeast = 0.9;
/** Grows by this factor per sample once the pressure is gone. */
const growth = 2;
/** Samples without pressure after which the budget is lifted even if it still binds. */
const clearSamplesMax = 10;

export function pressureOf(load: HostLoad, limits: HostLimits): PressureReason[] {
  const pressure: PressureReason[] = [];
  if (load.cpuBusyRatio > limits.cpuBusyRatioMax) pressure.push('host_cpu');
  if (load.networkBytesPerSecond > limits.networkBytesPerSecondMax) pressure.push('host_network');
  return pressure;
}

/**
 * The next budget from the host's load and the proxy's own bytes per second. Under pressure it
 * shrinks from what the proxy moves now, in proportion to how far the host is over (CPU and
 * network each), at least by 10 % a sample: when another process eats the headroom the host
 * stays over however little the proxy moves, so the proxy keeps yielding down to the floor.
 * Without pressure it doubles each sample and is lifted once it no longer binds (the proxy
 * used under half of it) or after ten clear samples.
 */
export function nextBudget(
  previous: BudgetState,
  load: HostLoad,
  proxyBytesPerSecond: number,
  limits: HostLimits,
): BudgetState {
  const pressure = pressureOf(load, limits);
  const floor = limits.appFloorBytesPerSecond;
  if (pressure.length > 0) {
    let factor = shrinkAtLeast;
    if (pressure.includes('host_cpu'))
      factor = Math.min(factor, limits.cpuBusyRatioMax / load.cpuBusyRatio);
    if (pressure.includes('host_network'))
      factor = Math.min(factor, limits.networkBytesPerSecondMax / load.networkBytesPerSecond);
    const base = Math.min(previous.bytesPerSecond ?? Number.POSITIVE_INFINITY, proxyBytesPerSecond);
    return { bytesPerSecond: Math.max(floor, base * factor), pressure, clearSamples: 0 };
  }
  if (previous.bytesPerSecond === null) return unlimited;
  const clearSamples = previous.clearSamples + 1;
  // Under half of it used: the budget no longer binds anyone.
  if (proxyBytesPerSecond < previous.bytesPerSecond / 2 || clearSamples >= clearSamplesMax)
    return unlimited;
  const bytesPerSecond = previous.bytesPerSecond * growth;
  // The reasons stay until the budget is lifted: they say why it is still below demand.
  return { bytesPerSecond, pressure: previous.pressure, clearSamples };
}

/**
 * Max-min fair shares of `budget` (water-filling): apps whose demand is under the fair level
 * keep all they use and get no entry (light apps untouched); the heaviest share what is left
 * equally, never below `floor`. A demand of Infinity is an app that was throttled and wants more.
 */
export function fairShares(
  demands: ReadonlyMap<string, number>,
  budget: number,
  floor: number,
): Map<string, number> {
  const ordered = [...demands].sort((one, other) => one[1] - other[1]);
  const shares = new Map<string, number>();
  let remaining = budget;
  for (const [index, [, demand]] of ordered.entries()) {
    const level = remaining / (ordered.length - index);
    if (demand <= level) {
      remaining -= demand;
      continue;
    }
    for (const [heavy] of ordered.slice(index)) shares.set(heavy, Math.max(floor, level));
    break;
  }
  return shares;
}
