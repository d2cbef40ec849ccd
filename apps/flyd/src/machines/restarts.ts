import type { FsmEngine, RunHandle } from '../fsm/engine.js';
import type { ExitInfo } from '../runtime/process-runtime.js';
import type { MachineConfig, MachineRecord, MachineStore } from './machine-store.js';
import { afterExit } from './restart-policy.js';

/** The `request` of an exit event, as `MachineService.exited` records it. */
export interface ExitRequest {
  exit_event: {
    exit_code: number | null;
    signal: NodeJS.Signals | null;
    oom_killed?: boolean;
    requested_stop?: boolean;
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
    this.#restarts.delete(id);
  }

  /** flyd exits: no restart fires after it (boot reads what is owed from the exit events). */
  stopAll(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  afterExit(id: string, config: MachineConfig, exit: ExitInfo, restarts: number): void {
    const next = afterExit(config, exit, restarts);
    if (next.action === 'destroy') {
      this.start(id, 'destroy', { kill: true }).done.catch(() => undefined);
    } else if (next.action === 'restart') {
      this.#restarts.set(id, restarts + 1);
      const timer = setTimeout(() => {
        this.#timers.delete(id);
        if (this.store.get(id)?.state === 'stopped' && !this.engine.isBusy(id)) {
          this.start(id, 'start', { source: 'restart-policy' }).done.catch(() => undefined);
        }
      }, next.delayMs);
      this.#timers.set(id, timer);
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
    this.afterExit(machine.id, machine.config, exit, request.restart_count ?? 0);
  }
}

function isExitRequest(request: unknown): request is ExitRequest {
  const exit = (request as Partial<ExitRequest> | undefined)?.exit_event;
  return typeof exit === 'object' && exit !== null && 'exit_code' in exit;
}
