import type { Catalog, MachineEntry } from '@fleet/catalog';
import type { Logger } from '@fleet/service';
import type { FlapsApi } from './flaps-api.js';

export interface AutostartOptions {
  /** Bound on a request waiting for a machine to start (the start call, the wait, the catalog seeing it). */
  timeoutMs: number;
  /** Machines being started at once by this proxy; past it a start is not attempted. */
  startsMax: number;
}

/**
 * Fly's autostart: when no machine of a service runs, the request waits while the closest
 * stopped (or suspended) one is started through the Machines API, then is routed to it; when
 * every running one is past its soft limit, one more is started without holding the request.
 * One start per machine at a time however many requests ask for it.
 */
export class Autostarter {
  readonly #starting = new Map<string, Promise<boolean>>();
  #started = 0;
  #failed = 0;

  constructor(
    private readonly catalog: Catalog,
    private readonly flaps: FlapsApi,
    private readonly options: AutostartOptions,
    private readonly logger: Logger,
  ) {}

  /** Starts the first of `machines` that can be, and resolves true once the catalog sees it started. */
  async startOne(app: string, machines: readonly MachineEntry[]): Promise<boolean> {
    const machine = machines[0];
    if (machine === undefined) return false;
    let starting = this.#starting.get(machine.id);
    if (starting === undefined) {
      if (this.#starting.size >= this.options.startsMax) return false;
      starting = this.#start(app, machine.id).finally(() => this.#starting.delete(machine.id));
      this.#starting.set(machine.id, starting);
    }
    return starting;
  }

  /** startOne without waiting: more capacity for an app whose machines are all past soft. */
  startInBackground(app: string, machines: readonly MachineEntry[]): void {
    const first = machines[0];
    if (first !== undefined && !this.#starting.has(first.id)) void this.startOne(app, machines);
  }

  stats(): { starting: number; started: number; failed: number } {
    return { starting: this.#starting.size, started: this.#started, failed: this.#failed };
  }

  async #start(app: string, machineId: string): Promise<boolean> {
    const deadline = Date.now() + this.options.timeoutMs;
    try {
      await this.flaps.start(app, machineId);
      await this.flaps.waitStarted(app, machineId, (deadline - Date.now()) / 1_000);
      // The catalog learns the new state from corrosion's change stream, a moment later.
      while (this.catalog.machine(machineId)?.state !== 'started') {
        if (Date.now() > deadline)
          throw new Error('the catalog did not see the machine started in time');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      this.#started += 1;
      this.logger.info({ app, machine: machineId }, 'machine autostarted');
      return true;
    } catch (error) {
      this.#failed += 1;
      this.logger.warn({ err: error, app, machine: machineId }, 'autostart failed');
      return false;
    }
  }
}
