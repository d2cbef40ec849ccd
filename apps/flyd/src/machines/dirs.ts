import { lchownSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Disks } from '../runtime/disks.js';
import type { HostPaths } from './launch-errors.js';
import type { MachineConfig } from './machine-store.js';

/** Where machine roots live and how large they are. */
export interface RootDisks {
  /** Their folder (`--roots-dir`, by default `roots/` of the data directory). */
  dir: string;
  /** Its disks (`--disks`); without, a root is a plain folder of unbounded size. */
  disks: Disks | undefined;
  /** A root's size when its config names none (`--machine-root-gb`). */
  defaultGb: number;
}

/** A root's name in the roots folder: a machine id, its disk image, the disk's grow mark. */
const rootEntry = /^([0-9a-f]{14})(\.ext4(\.grow)?)?$/;

/**
 * Where a machine lives on this worker: flyd's files about it under `machines/<id>` (its output,
 * process record and config: flyd's alone), its root under `<roots>/<id>` (the machine's own, see
 * machine-users.ts) — a disk of the config's `rootfs.size_gb`, as Fly's root filesystems are.
 */
export class MachineDirs {
  constructor(
    private readonly dataDir: string,
    private readonly imagesDir: string | undefined,
    private readonly roots: RootDisks,
  ) {}

  /** The machine's folder of flyd's files: its output files and its process record. */
  state(id: string): string {
    return machineStateDir(this.dataDir, id);
  }

  /** The machine's root (see root.ts): its working directory and HOME. */
  root(id: string): string {
    return join(this.roots.dir, id);
  }

  /**
   * Removes the roots of machines this worker does not have (`known`): what a destroy cut short
   * left, or a data directory deleted while its roots lay elsewhere (`--roots-dir`). Other files
   * in the folder are left alone.
   */
  async sweep(known: Set<string>): Promise<string[]> {
    const gone = new Set<string>();
    for (const name of readdirSync(this.roots.dir)) {
      const id = rootEntry.exec(name)?.[1];
      if (id !== undefined && !known.has(id)) gone.add(id);
    }
    for (const id of gone)
      if (this.roots.disks) await this.roots.disks.discard(id);
      else rmSync(this.root(id), { recursive: true, force: true });
    return [...gone];
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
    return {
      root: this.root(id),
      dataDir: this.dataDir,
      rootsDir: this.roots.dir,
      imagesDir: this.imagesDir,
    };
  }
}

export function machineStateDir(dataDir: string, id: string): string {
  return join(dataDir, 'machines', id);
}
