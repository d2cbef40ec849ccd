import type { CorrosionClient, Statement } from '@fleet/corrosion-client';
import type { Logger } from '@fleet/service';
import { backoffMs } from '@fleet/service';
import { reservations } from '../machines/capacity.js';
import type { MachineRecord, MachineStore } from '../machines/machine-store.js';
import { privateAddr } from '../machines/view.js';

export interface HostInfo {
  id: string;
  region: string;
  /** The API's URL; known once it listens (see `announce`). */
  flydAddr: string | null;
  cpus: number;
  memoryMb: number;
}

/**
 * Writes this worker's truth to its local corrosion: the `hosts` row, and for each machine its
 * `machines` row and `services` rows. Publishing never fails an operation: machines are marked
 * pending and a flush loop sends their latest state, retrying with capped backoff while
 * corrosion is unreachable. The pending set is bounded by the machines on this host.
 */
export class Publisher {
  readonly #pending = new Set<string>();
  /** Latest health check results not yet sent, by machine and check (bounded by the checks). */
  readonly #checks = new Map<string, Statement>();
  /** Latest statements of other rows (volumes, snapshots) not yet sent, by key: the latest wins. */
  readonly #rows = new Map<string, Statement[]>();
  #hostPending = true;
  #flushing: Promise<void> | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  /** Retries of a failing flush since the last one that went through. */
  #retries = 0;
  #closed = false;

  constructor(
    private readonly corrosion: CorrosionClient,
    private readonly machines: MachineStore,
    private readonly host: HostInfo,
    private readonly logger: Logger,
    private readonly retryDelayMsMax = 5_000,
  ) {}

  /** Marks a machine (and the host's counts) for publishing and starts a flush. */
  machineChanged(machineId: string): Promise<void> {
    this.#pending.add(machineId);
    this.#hostPending = true;
    return this.flush();
  }

  /** A health check changed status: its `health_checks` row is sent with the next flush. */
  checkChanged(machineId: string, name: string, status: string, output: string): Promise<void> {
    this.#checks.set(`${machineId}/${name}`, [
      `INSERT INTO health_checks (machine_id, name, status, output, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (machine_id, name) DO UPDATE SET status = excluded.status, output = excluded.output, updated_at = excluded.updated_at`,
      [machineId, name, status, output.slice(0, 1_000), new Date().toISOString()],
    ]);
    return this.flush();
  }

  /** Rows other than machines (a volume's, a snapshot's): sent with the next flush, latest per key. */
  rowChanged(key: string, statements: Statement[]): Promise<void> {
    this.#rows.set(key, statements);
    return this.flush();
  }

  /** Drops a row's unsent statements (a volume that moved away: its row is the new worker's). */
  rowForget(key: string): void {
    this.#rows.delete(key);
  }

  /**
   * Waits (bounded) until this host's corrosion holds a row another worker wrote, at least as
   * new as `updatedAtMin` (that worker's own clock, compared with its own value), or already
   * written by this host. A migrate's target calls it before writing the row itself: its write
   * then follows the source's in every agent's CRDT history and wins the merge (a concurrent
   * write would tie on col_version and be decided by value). True once there, false at the
   * deadline.
   */
  async awaitRow(
    table: 'machines' | 'volumes',
    id: string,
    updatedAtMin: string,
    timeoutMs: number,
  ): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const rows = await this.corrosion
        .queryObjects<{ host_id: string; updated_at: string }>([
          `SELECT host_id, updated_at FROM ${table} WHERE id = ?`,
          [id],
        ])
        .catch(() => []);
      const row = rows[0];
      if (row && (row.host_id === this.host.id || row.updated_at >= updatedAtMin)) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Sets the API's URL, published in the host row from now on. */
  announce(flydAddr: string): Promise<void> {
    this.host.flydAddr = flydAddr;
    return this.hostChanged();
  }

  hostChanged(): Promise<void> {
    this.#hostPending = true;
    return this.flush();
  }

  /** Sends everything pending; resolves when sent, or when this attempt failed (a retry is scheduled). */
  flush(): Promise<void> {
    this.#flushing ??= this.#send().finally(() => {
      this.#flushing = undefined;
      if (
        !this.#closed &&
        (this.#pending.size > 0 ||
          this.#checks.size > 0 ||
          this.#rows.size > 0 ||
          this.#hostSendable()) &&
        !this.#retryTimer
      ) {
        this.#retryTimer = setTimeout(
          () => {
            this.#retryTimer = undefined;
            void this.flush();
          },
          backoffMs(this.#retries, { baseMs: 100, maxMs: this.retryDelayMsMax }),
        );
        this.#retries += 1;
      }
    });
    return this.#flushing;
  }

  get pendingCount(): number {
    return this.#pending.size + (this.#hostPending ? 1 : 0);
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
  }

  async #send(): Promise<void> {
    while (
      this.#pending.size > 0 ||
      this.#checks.size > 0 ||
      this.#rows.size > 0 ||
      this.#hostSendable()
    ) {
      const ids = [...this.#pending];
      const host = this.#hostSendable();
      const checks = new Map(this.#checks);
      const rows = new Map(this.#rows);
      this.#pending.clear();
      this.#checks.clear();
      this.#rows.clear();
      if (host) this.#hostPending = false;
      const statements = ids.flatMap((id) => this.#machineStatements(id));
      statements.push(...checks.values());
      for (const rowStatements of rows.values()) statements.push(...rowStatements);
      if (host) statements.push(this.#hostStatement());
      try {
        await this.corrosion.transaction(statements);
        this.#retries = 0;
      } catch (error) {
        for (const id of ids) this.#pending.add(id);
        for (const [key, statement] of checks)
          if (!this.#checks.has(key)) this.#checks.set(key, statement);
        for (const [key, rowStatements] of rows)
          if (!this.#rows.has(key)) this.#rows.set(key, rowStatements);
        if (host) this.#hostPending = true;
        this.logger.warn(
          { err: error, machines: ids.length },
          'publishing to corrosion failed; will retry',
        );
        return;
      }
    }
  }

  /** The host row waits for the API's address: a row without it would be unplaceable. */
  #hostSendable(): boolean {
    return this.#hostPending && this.host.flydAddr !== null;
  }

  #machineStatements(id: string): Statement[] {
    const machine = this.machines.get(id);
    if (!machine) return [];
    const destroyed: Statement[] =
      machine.state === 'destroyed'
        ? [['DELETE FROM health_checks WHERE machine_id = ?', [id]]]
        : [];
    return [
      ...destroyed,
      ['DELETE FROM services WHERE machine_id = ?', [id]],
      [
        `INSERT INTO machines (id, app, name, host_id, region, instance_id, state, private_addr, config, metadata, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET app = excluded.app, name = excluded.name, host_id = excluded.host_id, region = excluded.region,
           instance_id = excluded.instance_id, state = excluded.state, private_addr = excluded.private_addr,
           config = excluded.config, metadata = excluded.metadata, updated_at = excluded.updated_at`,
        [
          id,
          machine.app,
          machine.name,
          this.host.id,
          machine.region,
          machine.instance_id,
          machine.state,
          privateAddr(machine),
          JSON.stringify(machine.config),
          JSON.stringify(machine.config.metadata ?? {}),
          machine.created_at,
          machine.updated_at,
        ],
      ],
      ...servicesOf(machine),
    ];
  }

  /**
   * The host's row: its capacity and reservations. `status` is written only when the row is new
   * (`ready`): after that it is the operator's (`cordoned`) and flaps' host liveness's (`down`,
   * `ready` again), and a flyd that counts its machines must not undo either.
   */
  #hostStatement(): Statement {
    return [
      `INSERT INTO hosts (id, region, role, flyd_addr, cpus, memory_mb, cpus_reserved, memory_mb_reserved, machine_count, status, updated_at)
       VALUES (?, ?, 'worker', ?, ?, ?, ?, ?, ?, 'ready', ?)
       ON CONFLICT (id) DO UPDATE SET region = excluded.region, role = excluded.role, flyd_addr = excluded.flyd_addr,
         cpus = excluded.cpus, memory_mb = excluded.memory_mb, cpus_reserved = excluded.cpus_reserved,
         memory_mb_reserved = excluded.memory_mb_reserved, machine_count = excluded.machine_count,
         updated_at = excluded.updated_at`,
      [
        this.host.id,
        this.host.region,
        this.host.flydAddr,
        this.host.cpus,
        this.host.memoryMb,
        ...reservations(this.machines.list()),
        new Date().toISOString(),
      ],
    ];
  }
}

/**
 * Services make a machine routable: a destroyed machine keeps no services rows, and a cordoned
 * one has none while cordoned (it runs, but the proxy sends it nothing).
 */
function servicesOf(machine: MachineRecord): Statement[] {
  if (machine.state === 'destroyed' || machine.cordoned) return [];
  return (machine.config.services ?? []).map((service) => [
    `INSERT INTO services (machine_id, internal_port, app, protocol, ports, handlers, concurrency, autostart, autostop, min_machines_running)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      machine.id,
      service.internal_port,
      machine.app,
      service.protocol ?? 'tcp',
      JSON.stringify(service.ports ?? []),
      JSON.stringify([...new Set((service.ports ?? []).flatMap((port) => port.handlers ?? []))]),
      JSON.stringify(service.concurrency ?? {}),
      service.autostart ? 1 : 0,
      String(service.autostop ?? 'off'),
      service.min_machines_running ?? 0,
    ],
  ]);
}
