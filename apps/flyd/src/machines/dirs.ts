import { lchownSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Disks } from '../runtime/disks.js';
import type { HostPaths } from './launch-errors.js';
import type { MachineConfig } from './machine-store.js';

/** Where machine roots live and how large they are. */
export interface RootDisks {
  /** The disks of `roots/` (`--disks`); without, a root is a plain folder of unbounded size. */
  disks: Disks | undefined;
  /** A root's size when its config names none (`--machine-root-gb`). */
  defaultGb: number;
}

/**
 * Where a machine lives on this worker: flyd's files about it under `machines/<id>` (its output,
 * process record and config: flyd's alone), its root under `roots/<id>` (the machine's own, see
 * machine-users.ts) — a disk of the config's `rootfs.size_gb`, as Fly's root filesystems are.
 */
export class MachineDirs {
  constructor(
    private readonly dataDir: string,
    private readonly imagesDir: string | undefined,
    private readonly roots: RootDisks = { disks: undefined, defaultGb: 0 },
  ) {}

  /** The machine's folder of flyd's files: its output files and its process record. */
  state(id: string): string {
    return machineStateDir(this.dataDir, id);
  }

  /** The machine's root (see root.ts): its working directory and HOME. */
  root(id: string): string {
    return join(this.dataDir, 'roots', id);
  }

  /**
   * An empty root for the machine's next run, what the last one left gone: its disk emptied (a
   * new one at its first start, or when its size changed: a disk is made in about 20 ms, which a
   * restart does not pay again), or an empty folder.
   */
  async freshRoot(id: string, config: MachineConfig): Promise<void> {
    const { disks, defaultGb } = this.roots;
    const root = this.root(id);
    if (disks) {
      const sizeGb = (config.rootfs as { size_gb?: number } | undefined)?.size_gb ?? defaultGb;
      if (!disks.isOfSize(id, sizeGb)) return disks.fresh(id, sizeGb);
      await disks.mount(id);
      for (const name of readdirSync(root))
        rmSync(join(root, name), { recursive: true, force: true });
      // flyd's again, as a new root is: the launch hands it (with what it copies in) to the machine.
      lchownSync(root, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
      return;
    }
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
  }

  /** Unmounts the roots of machines not running (flyd's exit): none is left mounted for naught. */
  async unmountIdle(running: (id: string) => boolean): Promise<void> {
    const disks = this.roots.disks;
    for (const id of disks?.mounted() ?? []) if (!running(id)) await disks?.unmount(id);
  }

  /** Removes what a destroyed (or migrated away) machine left on this worker. */
  async remove(id: string): Promise<void> {
    await this.roots.disks?.discard(id);
    rmSync(this.state(id), { recursive: true, force: true });
    rmSync(this.root(id), { recursive: true, force: true });
  }

  /** This worker's paths for machine `id`, which no answer or event may show. */
  hidden(id: string): HostPaths {
    return { root: this.root(id), dataDir: this.dataDir, imagesDir: this.imagesDir };
  }
}

export function machineStateDir(dataDir: string, id: string): string {
  return join(dataDir, 'machines', id);
}
