import type { Catalog, MachineEntry } from '@fleet/catalog';
import type { Logger } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import type { FlapsApi } from './flaps-api.js';

export interface AutostopOptions {
  /** How often excess machines are looked for (Fly: every few minutes). */
  intervalMs: number;
  /** Apps remembered as served by this proxy at most (the least recently served forgotten). */
  appsMax: number;
}

/**
 * Fly's autostop: every interval, in each region of each app this proxy served, when the
 * machines' current load would fit under the soft limit of one machine fewer, exactly one
 * started machine that served nothing since the last look is stopped (or suspended, per the
 * service's `auto_stop_machines`), never taking the app below its `min_machines_running`.
 */
export class Autostopper {
  /** App → machine id → requests sent to it since the last look. */
  readonly #served = new Map<string, Map<string, number>>();
  readonly #timer: NodeJS.Timeout;
  #stopped = 0;
  /** Passes completed: a test, or an operator, can tell that it looked and left things as they were. */
  #passes = 0;
  #running = false;

  constructor(
    private readonly catalog: Catalog,
    private readonly flaps: FlapsApi,
    private readonly options: AutostopOptions,
    private readonly logger: Logger,
  ) {
    this.#timer = setInterval(() => void this.look(), options.intervalMs);
    this.#timer.unref();
  }

  /** A request went to `machine` (called on the relay's path: one map update). */
  served(machine: MachineEntry): void {
    let machines = this.#served.get(machine.app);
    if (machines === undefined) {
      if (this.#served.size >= this.options.appsMax) {
        this.#served.delete(this.#served.keys().next().value as string);
      }
      machines = new Map();
      this.#served.set(machine.app, machines);
    }
    machines.set(machine.id, (machines.get(machine.id) ?? 0) + 1);
  }

  stats(): { apps: number; stopped: number; passes: number } {
    return { apps: this.#served.size, stopped: this.#stopped, passes: this.#passes };
  }

  close(): void {
    clearInterval(this.#timer);
  }

  /** One pass over every app served since the last one. */
  async look(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      const served = [...this.#served].map(([app, machines]) => [app, new Map(machines)] as const);
      for (const machines of this.#served.values()) machines.clear();
      for (const [app, machines] of served) await this.#lookAt(app, machines);
    } finally {
      this.#passes += 1;
      this.#running = false;
    }
  }

  async #lookAt(app: string, servedBefore: Map<string, number>): Promise<void> {
    const entry = await this.catalog.app(app);
    if (entry === undefined) return;
    const started = entry.machines.filter((machine) => machine.state === 'started');
    const byRegion = new Map<string, MachineEntry[]>();
    for (const machine of started) {
      const region = byRegion.get(machine.region) ?? [];
      region.push(machine);
      byRegion.set(machine.region, region);
    }
    let running = started.length;
    for (const [region, machines] of byRegion) {
      const services = present(machines[0], "a region's first machine").services;
      const spec = services.find((service) => service.http) ?? services[0];
      if (spec === undefined || spec.autostop === 'off') continue;
      if (running <= spec.minMachinesRunning) return;
      const load = machines.reduce((sum, machine) => sum + machine.load, 0);
      // Would the load fit under the soft limit of one machine fewer?
      if (load > (machines.length - 1) * spec.concurrency.softLimit) continue;
      const idle = machines.find((machine) => machine.load === 0 && !servedBefore.has(machine.id));
      if (idle === undefined) continue;
      try {
        if (spec.autostop === 'suspend') await this.flaps.suspend(app, idle.id);
        else await this.flaps.stop(app, idle.id);
        this.#stopped += 1;
        running -= 1;
        this.logger.info(
          { app, machine: idle.id, region, how: spec.autostop },
          'machine autostopped',
        );
      } catch (error) {
        this.logger.warn({ err: error, app, machine: idle.id }, 'autostop failed');
      }
    }
  }
}
