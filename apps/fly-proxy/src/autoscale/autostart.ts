import type { Catalog, MachineEntry } from '@fleet/catalog';
import type { Logger } from '@fleet/service';
import { type FlapsApi, FlapsCallError, type MachineEvent } from './flaps-api.js';

/** An autostart's outcome: the machine is started and the catalog knows it, or why not. */
export type AutostartResult = { started: true } | { started: false; why: string };

/**
 * A start is waited for in rounds of this many seconds (the Machines API's wait, server side):
 * between them a machine that exited as it started is noticed, not waited for to the deadline.
 */
const waitRoundSeconds = 1;

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
  readonly #starting = new Map<string, Promise<AutostartResult>>();
  #started = 0;
  #failed = 0;

  constructor(
    private readonly catalog: Catalog,
    private readonly flaps: FlapsApi,
    private readonly options: AutostartOptions,
    private readonly logger: Logger,
  ) {}

  /** Starts the first of `machines` that can be; resolves once the catalog sees it started, or why not. */
  async startOne(app: string, machines: readonly MachineEntry[]): Promise<AutostartResult> {
    const machine = machines[0];
    if (machine === undefined) return { started: false, why: 'no machine to start' };
    let starting = this.#starting.get(machine.id);
    if (starting === undefined) {
      if (this.#starting.size >= this.options.startsMax)
        return {
          started: false,
          why: `${this.options.startsMax} machines are being started already (--autostarts-max)`,
        };
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

  async #start(app: string, machineId: string): Promise<AutostartResult> {
    const deadline = Date.now() + this.options.timeoutMs;
    try {
      // Events carry the worker's clock: an exit is this start's when it is newer than them all.
      const before = newest(await this.flaps.events(app, machineId));
      await this.flaps.start(app, machineId).catch((error: unknown) => {
        // The worker answers a start once the machine listens on its services' ports.
        if (error instanceof FlapsCallError && error.timedOut)
          throw new Error(
            `its start did not finish within ${this.options.timeoutMs} ms (--autostart-timeout-ms): a machine is started once it listens on its service's internal_port, on 0.0.0.0`,
          );
        throw error;
      });
      for (;;) {
        const leftMs = deadline - Date.now();
        if (leftMs <= 0)
          throw new Error(
            `it was not started within ${this.options.timeoutMs} ms (--autostart-timeout-ms)`,
          );
        if (
          await this.flaps.waitStarted(app, machineId, Math.min(waitRoundSeconds, leftMs / 1_000))
        )
          break;
        const events = await this.flaps.events(app, machineId);
        const exit = events.find((event) => event.type === 'exit' && event.timestamp > before);
        if (exit !== undefined) throw new Error(`it ${howItEnded(exit)} as it started`);
      }
      // The catalog learns the new state from corrosion's change stream, a moment later.
      while (this.catalog.machine(machineId)?.state !== 'started') {
        if (Date.now() > deadline)
          throw new Error('the catalog did not see the machine started in time');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      this.#started += 1;
      this.logger.info({ app, machine: machineId }, 'machine autostarted');
      return { started: true };
    } catch (error) {
      this.#failed += 1;
      this.logger.warn({ err: error, app, machine: machineId }, 'autostart failed');
      return {
        started: false,
        why: `autostarting machine ${machineId} failed: ${(error as Error).message}`,
      };
    }
  }
}

/** The timestamp of the newest of `events` (0 when there are none). */
function newest(events: readonly MachineEvent[]): number {
  return events.reduce((latest, event) => Math.max(latest, event.timestamp), 0);
}

/** How a machine's process ended, from its exit event: `exited with code 3`. */
function howItEnded(exit: MachineEvent): string {
  const ended = exit.request?.exit_event;
  if (ended?.oom_killed) return 'ran out of memory';
  if (ended?.signal !== undefined && ended.signal !== null)
    return `was killed by signal ${ended.signal}`;
  if (ended?.exit_code !== undefined && ended.exit_code !== null)
    return `exited with code ${ended.exit_code}`;
  return 'exited';
}
