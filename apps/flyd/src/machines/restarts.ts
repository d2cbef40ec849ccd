import type { FsmEngine, RunHandle } from '../fsm/engine.js';
import type { ExitInfo } from '../runtime/process-runtime.js';
import type { MachineRecord, MachineStore } from './machine-store.js';
import { type AfterExit, afterExit } from './restart-policy.js';

/** The `request` of an exit event, as `MachineService.exited` records it. */
export interface ExitRequest {
  exit_event: {
    exit_code: number | null;
    signal: NodeJS.Signals | null;
    oom_killed?: boolean;
    requested_stop?: boolean;
    /** Whether the restart policy starts the machine again (Fly's field). */
    restarting?: boolean;
  };
  /** Fly's field: restarts the policy made before this exit. */
  restart_count?: number;
}

/**
 * What the restart policy does after a machine's process exits on its own: destroy the machine,
 * or start it again after the policy's backoff. Counts the restarts made since a caller last
 * started the machine, so the policy's retry bound holds.
 */
export class RestartScheduler {
  readonly #restarts = new Map<string, number>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  /** Restarts whose backoff ran out while a run still held the machine: made once it settles. */
  readonly #due = new Set<string>();

  constructor(
    private readonly store: MachineStore,
    private readonly engine: FsmEngine,
    private readonly start: (id: string, action: string, request: unknown) => RunHandle,
  ) {}

  /** Restarts made since the machine was last started by a caller. */
  count(id: string): number {
    return this.#restarts.get(id) ?? 0;
  }

  /** A caller started the machine: the policy's count begins again. */
  reset(id: string): void {
    this.#restarts.delete(id);
  }

  /** A caller's stop or destroy overrides a restart the policy had scheduled. */
  cancel(id: string): void {
    clearTimeout(this.#timers.get(id));
    this.#timers.delete(id);
    this.#due.delete(id);
    this.#restarts.delete(id);
  }

  /** flyd exits: no restart fires after it (boot reads what is owed from the exit events). */
  stopAll(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#due.clear();
  }

  /** Does what the policy decided after an exit (`afterExit`): destroy, or restart later. */
  follow(id: string, next: AfterExit, restarts: number): void {
    if (next.action === 'destroy') {
      this.#due.add(id);
      void this.#onceSettled(id, 'destroy', { kill: true });
    } else if (next.action === 'restart') {
      this.#restarts.set(id, restarts + 1);
      const timer = setTimeout(() => {
        this.#timers.delete(id);
        this.#due.add(id);
        void this.#onceSettled(id, 'start', { source: 'restart-policy' });
      }, next.delayMs);
      this.#timers.set(id, timer);
    }
  }

  /**
   * The run that launched the process may still hold the machine when it exits (a start waiting
   * for its row to reach corrosion on a loaded host): the policy's restart or destroy waits for
   * that run to end instead of being refused as a conflict and lost. A caller's stop or destroy
   * meanwhile cancels it.
   */
  async #onceSettled(id: string, action: 'start' | 'destroy', request: unknown): Promise<void> {
    await this.engine.settled(id);
    if (!this.#due.delete(id)) return;
    if (this.store.get(id)?.state !== 'stopped' || this.engine.isBusy(id)) return;
    try {
      this.start(id, action, request).done.catch(() => undefined);
    } catch {
      // Taken by a caller's run in between: theirs decides what the machine does next.
    }
  }

  /**
   * At boot, a machine that stopped because its process exited gets what its policy said then:
   * the restart (or auto-destroy) a crashed flyd's backoff timer held is not lost. The exit and
   * the retries spent so far are read back from its last exit event.
   */
  resume(machine: MachineRecord): void {
    const exitEvent = this.store
      .events(machine.id)
      .find((event) => event.type === 'exit' && isExitRequest(event.request));
    if (!exitEvent) return;
    const request = exitEvent.request as ExitRequest;
    const exit: ExitInfo = {
      code: request.exit_event.exit_code,
      signal: request.exit_event.signal,
      oomKilled: request.exit_event.oom_killed === true,
      requested: false,
    };
    const restarts = request.restart_count ?? 0;
    this.follow(machine.id, afterExit(machine.config, exit, restarts), restarts);
  }
}

function isExitRequest(request: unknown): request is ExitRequest {
  const exit = (request as Partial<ExitRequest> | undefined)?.exit_event;
  return typeof exit === 'object' && exit !== null && 'exit_code' in exit;
}
