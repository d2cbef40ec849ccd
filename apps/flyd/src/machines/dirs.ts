import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { HostPaths } from './launch-errors.js';

/**
 * Where a machine lives on this worker: flyd's files about it under `machines/<id>` (its output,
 * process record and config: flyd's alone), its root under `roots/<id>` (the machine's own, see
 * machine-users.ts).
 */
export class MachineDirs {
  constructor(
    private readonly dataDir: string,
    private readonly imagesDir: string | undefined,
  ) {}

  /** The machine's folder of flyd's files: its output files and its process record. */
  state(id: string): string {
    return machineStateDir(this.dataDir, id);
  }

  /** The machine's root (see root.ts): its working directory and HOME. */
  root(id: string): string {
    return join(this.dataDir, 'roots', id);
  }

  /** This worker's paths for machine `id`, which no answer or event may show. */
  hidden(id: string): HostPaths {
    return { root: this.root(id), dataDir: this.dataDir, imagesDir: this.imagesDir };
  }
}

export function machineStateDir(dataDir: string, id: string): string {
  return join(dataDir, 'machines', id);
}

/** Removes what a destroyed (or migrated away) machine left on this worker. */
export function removeMachineDirs(dataDir: string, id: string): void {
  const dirs = new MachineDirs(dataDir, undefined);
  rmSync(dirs.state(id), { recursive: true, force: true });
  rmSync(dirs.root(id), { recursive: true, force: true });
}
