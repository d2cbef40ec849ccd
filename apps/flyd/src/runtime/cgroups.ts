import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { present } from '@fleet/service/invariant';

/**
 * What a machine may use: `guest.memory_mb` and `guest.cpus` of its config, and the processes and
 * threads it may have at once (`--machine-pids-max`).
 */
export interface MachineLimits {
  memoryMb: number;
  cpus: number;
  pidsMax: number;
}

/** The scheduler period a CPU quota is a share of (the kernel's default). */
const cpuPeriodUs = 100_000;

/**
 * Linux control groups, one per machine under a `fleet` group: a memory limit (the kernel
 * OOM-kills the machine past it), a CPU quota of `cpus` cores and, where the host has the pids
 * controller, a bound on its processes and threads (a fork bomb in one machine fails its own
 * forks, not the host's). Works with the unified (v2) hierarchy or the v1 `memory`, `cpu` and
 * `pids` ones, whichever the host mounts; `detect` answers undefined where flyd may not create
 * groups (not root, read-only /sys/fs/cgroup), and limits are then not enforced.
 */
export class Cgroups {
  private constructor(
    readonly version: 1 | 2,
    private readonly root: string,
    /** Whether machines' processes are bounded (the pids controller is there). */
    readonly boundsPids: boolean,
  ) {}

  static detect(root = '/sys/fs/cgroup'): Cgroups | undefined {
    try {
      if (readable(join(root, 'cgroup.controllers'))) {
        const controllers = readFileSync(join(root, 'cgroup.controllers'), 'utf8').split(/\s+/);
        if (!controllers.includes('memory') || !controllers.includes('cpu')) return undefined;
        const pids = controllers.includes('pids');
        const wanted = pids ? '+memory +cpu +pids' : '+memory +cpu';
        mkdirSync(join(root, 'fleet'), { recursive: true });
        // A v2 group hands controllers to its children only when told to, at every level.
        writeFileSync(join(root, 'cgroup.subtree_control'), wanted);
        writeFileSync(join(root, 'fleet', 'cgroup.subtree_control'), wanted);
        return new Cgroups(2, root, pids);
      }
      // v1 only where its controllers are mounted: an empty or unmounted /sys/fs/cgroup (as under
      // `ip netns exec`, which remounts /sys) is not a hierarchy, and a recursive mkdir into sysfs
      // never returns.
      if (
        !readable(join(root, 'memory', 'memory.limit_in_bytes')) ||
        !readable(join(root, 'cpu', 'cpu.cfs_quota_us'))
      )
        return undefined;
      mkdirSync(join(root, 'memory', 'fleet'), { recursive: true });
      mkdirSync(join(root, 'cpu', 'fleet'), { recursive: true });
      const pids = readable(join(root, 'pids', 'cgroup.procs'));
      if (pids) mkdirSync(join(root, 'pids', 'fleet'), { recursive: true });
      return new Cgroups(1, root, pids);
    } catch {
      return undefined;
    }
  }

  /** Creates the machine's groups with its limits; returns the files a process joins them by. */
  create(machineId: string, limits: MachineLimits): string[] {
    const memoryBytes = String(Math.round(limits.memoryMb * 1024 * 1024));
    const quotaUs = Math.max(1_000, Math.round(limits.cpus * cpuPeriodUs));
    const dirs = this.#dirs(machineId);
    for (const dir of dirs) mkdirSync(dir, { recursive: true });
    // v2: one group; v1: the memory hierarchy's, the cpu one's, the pids one's (see #dirs).
    const [memoryDir, cpuDir = memoryDir, pidsDir = memoryDir] = dirs;
    const memory = present(memoryDir, 'the memory group');
    const cpu = present(cpuDir, 'the cpu group');
    if (this.version === 2) {
      writeFileSync(join(memory, 'memory.max'), memoryBytes);
      writeFileSync(join(memory, 'cpu.max'), `${quotaUs} ${cpuPeriodUs}`);
    } else {
      writeFileSync(join(memory, 'memory.limit_in_bytes'), memoryBytes);
      writeFileSync(join(cpu, 'cpu.cfs_period_us'), String(cpuPeriodUs));
      writeFileSync(join(cpu, 'cpu.cfs_quota_us'), String(quotaUs));
    }
    if (this.boundsPids)
      writeFileSync(join(present(pidsDir, 'the pids group'), 'pids.max'), String(limits.pidsMax));
    return this.procsFiles(machineId);
  }

  /** The files a process joins the machine's groups by. */
  procsFiles(machineId: string): string[] {
    return this.#dirs(machineId).map((dir) => join(dir, 'cgroup.procs'));
  }

  /** Whether the kernel OOM-killed a process of the machine's group. */
  oomKilled(machineId: string): boolean {
    const dir = present(this.#dirs(machineId)[0], 'the memory group');
    const file = join(dir, this.version === 2 ? 'memory.events' : 'memory.oom_control');
    try {
      const kills = /^oom_kill (\d+)$/m.exec(readFileSync(file, 'utf8'));
      return kills !== null && Number(kills[1]) > 0;
    } catch {
      return false;
    }
  }

  /** The pids in the machine's group: everything it started, whatever its process group. */
  procs(machineId: string): number[] {
    try {
      const text = readFileSync(
        join(present(this.#dirs(machineId)[0], 'the first group'), 'cgroup.procs'),
        'utf8',
      );
      return text.split('\n').filter(Boolean).map(Number);
    } catch {
      return []; // no group (gone, or never made)
    }
  }

  /** Removes the machine's groups (once its processes are gone; a busy group is left). */
  remove(machineId: string): void {
    for (const dir of this.#dirs(machineId)) {
      try {
        rmdirSync(dir);
      } catch {
        // already gone, or a process still in it: the next create reuses it
      }
    }
  }

  /** The cgroup paths of one machine: v2 one; v1 memory, cpu and (where there) pids. */
  #dirs(machineId: string): string[] {
    if (!/^[0-9a-zA-Z_-]+$/.test(machineId)) throw new RangeError(`bad machine id ${machineId}`);
    if (this.version === 2) return [join(this.root, 'fleet', machineId)];
    return ['memory', 'cpu', ...(this.boundsPids ? ['pids'] : [])].map((hierarchy) =>
      join(this.root, hierarchy, 'fleet', machineId),
    );
  }
}

/**
 * Moves process `pid` into the groups of `procsFiles`, all at once: on cgroup v1 a move waits for
 * an RCU grace period (10–20 ms on a quiet host), which moves under way together share.
 */
export async function joinGroups(procsFiles: string[], pid: number): Promise<void> {
  await Promise.all(procsFiles.map((file) => writeFile(file, String(pid))));
}

/**
 * The command that puts a process in its groups before it runs anything: a shell writes its own
 * pid to each `cgroup.procs`, then execs the machine's command in place (same pid, same process
 * group), so nothing the machine starts can escape the limits.
 */
export function inGroups(procsFiles: string[], command: string[]): string[] {
  const joins = procsFiles.map((file) => `echo $$ > '${file}'`).join(' && ');
  return ['/bin/sh', '-c', `${joins} && exec "$@"`, 'sh', ...command];
}

function readable(path: string): boolean {
  try {
    readFileSync(path);
    return true;
  } catch {
    return false;
  }
}
