/** CPU time counters of the host: the first (aggregate) `cpu` line of /proc/stat, in jiffies. */
export interface CpuCounters {
  /** user + nice + system + idle + iowait + irq + softirq + steal (guest is inside user). */
  totalJiffies: number;
  /** idle + iowait: time no work could run. */
  idleJiffies: number;
  /** Time spent on softirqs: network packet processing lives here (seed 004). */
  softirqJiffies: number;
}

/** Bytes the host's interfaces moved, every interface but loopback, since boot. */
export interface NetworkCounters {
  receivedBytes: number;
  transmittedBytes: number;
}

/** The host's load between two samples. */
export interface HostLoad {
  /** Share of CPU time busy (softirq included), 0..1. */
  cpuBusyRatio: number;
  /** Share of CPU time in softirq alone, 0..1. */
  softirqRatio: number;
  /** Bytes received and transmitted per second on the host's interfaces, together. */
  networkBytesPerSecond: number;
}

export class ProcFormatError extends Error {}

/** The aggregate `cpu` line of /proc/stat (proc(5)); throws ProcFormatError when there is none. */
export function parseProcStat(text: string): CpuCounters {
  const line = text.split('\n').find((each) => /^cpu\s/.test(each));
  if (line === undefined) throw new ProcFormatError('/proc/stat has no aggregate "cpu" line');
  const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (fields.length < 7 || !fields.every((value) => Number.isFinite(value) && value >= 0))
    throw new ProcFormatError(`/proc/stat cpu line is not counters: "${line.slice(0, 120)}"`);
  // the check above guarantees the first seven; steal is absent before Linux 2.6.11
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] =
    fields;
  return {
    totalJiffies: user + nice + system + idle + iowait + irq + softirq + steal,
    idleJiffies: idle + iowait,
    softirqJiffies: softirq,
  };
}

/** Sums received and transmitted bytes of every interface in /proc/net/dev except `lo`. */
export function parseNetDev(text: string): NetworkCounters {
  let receivedBytes = 0;
  let transmittedBytes = 0;
  let interfaces = 0;
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0 || line.includes('|')) continue; // the two header lines
    const name = line.slice(0, colon).trim();
    const fields = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    if (fields.length < 16 || !fields.every(Number.isFinite))
      throw new ProcFormatError(`/proc/net/dev line for "${name}" is not 16 counters`);
    interfaces += 1;
    if (name === 'lo') continue;
    // the check above guarantees 16 counters: bytes received first, bytes sent ninth
    const [received = 0, , , , , , , , transmitted = 0] = fields;
    receivedBytes += received;
    transmittedBytes += transmitted;
  }
  if (interfaces === 0) throw new ProcFormatError('/proc/net/dev lists no interface');
  return { receivedBytes, transmittedBytes };
}

/**
 * The load between two samples `elapsedMs` apart. Counters that went backwards (a reboot, a
 * container's remounted /proc) give zero, never a negative load.
 */
export function loadBetween(
  before: { cpu: CpuCounters; network: NetworkCounters },
  after: { cpu: CpuCounters; network: NetworkCounters },
  elapsedMs: number,
): HostLoad {
  const total = after.cpu.totalJiffies - before.cpu.totalJiffies;
  const idle = after.cpu.idleJiffies - before.cpu.idleJiffies;
  const softirq = after.cpu.softirqJiffies - before.cpu.softirqJiffies;
  const bytes =
    after.network.receivedBytes -
    before.network.receivedBytes +
    (after.network.transmittedBytes - before.network.transmittedBytes);
  const ratio = (part: number) => (total > 0 ? Math.min(1, Math.max(0, part / total)) : 0);
  return {
    cpuBusyRatio: ratio(total - idle),
    softirqRatio: ratio(softirq),
    networkBytesPerSecond: elapsedMs > 0 ? Math.max(0, (bytes * 1000) / elapsedMs) : 0,
  };
}
