import { join } from 'node:path';
import type { HostPaths } from './launch-errors.js';

/** Where a machine lives on this worker. */
export class MachineDirs {
  constructor(
    private readonly dataDir: string,
    private readonly imagesDir: string | undefined,
  ) {}

  /** The machine's own folder: its root, its output files and its process record. */
  state(id: string): string {
    return join(this.dataDir, 'machines', id);
  }

  /** The machine's root (see root.ts): its working directory and HOME. */
  root(id: string): string {
    return join(this.state(id), 'root');
  }

  /** This worker's paths for machine `id`, which no answer or event may show. */
  hidden(id: string): HostPaths {
    return { root: this.root(id), dataDir: this.dataDir, imagesDir: this.imagesDir };
  }
}
