import { guestOf as guestDefaults } from '@fleet/machine-config';
import type { Database as Db } from 'better-sqlite3';
import { RecordTable } from '../record-table-store.js';

/** A machine as flyd records it. */
export interface MachineRecord {
  id: string;
  app: string;
  name: string;
  region: string;
  instance_id: string;
  state: MachineState;
  config: MachineConfig;
  image_ref: string;
  port: number | null;
  /** Its address in a network of its own (machine-network.ts); null on the host's loopback. */
  ip: string | null;
  pid: number | null;
  stop_reason: string | null;
  /** A cordoned machine runs but takes no traffic: its services are not published. */
  cordoned: boolean;
  created_at: string;
  updated_at: string;
}

/** Fly's machine states, as far as this worker drives them. */
export type MachineState =
  | 'created'
  | 'starting'
  | 'started'
  | 'stopping'
  | 'stopped'
  | 'suspending'
  | 'suspended'
  | 'destroying'
  | 'destroyed';

export interface ServiceConfig {
  protocol?: string;
  internal_port: number;
  ports?: { port?: number; handlers?: string[] }[];
  concurrency?: Record<string, unknown>;
  autostart?: boolean;
  autostop?: string | boolean;
  min_machines_running?: number;
}

/** The subset of Fly's machine config flyd acts on; the rest is kept and returned as given. */
export interface MachineConfig {
  image?: string;
  init?: { cmd?: string[]; exec?: string[]; entrypoint?: string[] };
  env?: Record<string, string>;
  services?: ServiceConfig[];
  guest?: { cpus?: number; memory_mb?: number; cpu_kind?: string };
  stop_config?: { signal?: string; timeout?: string | number };
  restart?: { policy?: string; max_retries?: number };
  [key: string]: unknown;
}

/**
 * What a machine may use: its `guest`, with Fly's defaults (one shared CPU, and the smallest
 * memory of its size: 256 MB per shared CPU, 2 GB per performance CPU).
 */
export function guestOf(config: MachineConfig): { cpus: number; memoryMb: number } {
  const { cpus, memoryMb } = guestDefaults(config);
  return { cpus, memoryMb };
}

/** One version of a machine's config, as `GET /v1/machines/{id}/versions` lists it. */
export interface MachineVersion {
  version: string;
  user_config: MachineConfig;
  created_at: string;
  state: MachineState | 'replaced';
}

export interface MachineEvent {
  type: string;
  status: string;
  source: string;
  request?: unknown;
  timestamp: number;
}

type Row = Omit<MachineRecord, 'config' | 'cordoned'> & { config: string; cordoned: number };

/** The machines table of flyd's database; every write stamps `updated_at`. */
export class MachineStore {
  /** `eventsMax`: events kept per machine, the newest (Fly too keeps a machine's last events). */
  readonly #table: RecordTable<Row, MachineRecord>;

  constructor(
    private readonly db: Db,
    readonly eventsMax = 100,
  ) {
    this.#table = new RecordTable(db, 'machines', decode);
  }

  get(id: string): MachineRecord | undefined {
    return this.#table.get(id);
  }

  list(app?: string): MachineRecord[] {
    return this.#table.list(app);
  }

  insert(machine: MachineRecord): void {
    this.db
      .prepare(
        `INSERT INTO machines (id, app, name, region, instance_id, state, config, image_ref, port, ip, pid, stop_reason, cordoned, created_at, updated_at)
         VALUES (@id, @app, @name, @region, @instance_id, @state, @config, @image_ref, @port, @ip, @pid, @stop_reason, @cordoned, @created_at, @updated_at)`,
      )
      .run({
        ...machine,
        config: JSON.stringify(machine.config),
        cordoned: Number(machine.cordoned),
      });
    this.#addVersion(machine.id, machine.instance_id, machine.config, machine.created_at);
  }

  update(
    id: string,
    changes: Partial<
      Pick<MachineRecord, 'state' | 'port' | 'ip' | 'pid' | 'stop_reason' | 'cordoned'>
    >,
  ): MachineRecord {
    const values: Record<string, unknown> = { ...changes };
    if (changes.cordoned !== undefined) values.cordoned = Number(changes.cordoned); // SQLite has no booleans
    return this.#table.update(id, values);
  }

  /** Replaces the machine's config in place (metadata): the version stays what it was. */
  replaceConfig(id: string, config: MachineConfig): MachineRecord {
    return this.#table.update(id, { config: JSON.stringify(config) });
  }

  /**
   * Makes `config` the machine's new version `version`, in one transaction: the version row, the
   * machine's config and instance id, and an `update` event (status `replaced`) naming the
   * instance it replaced. Idempotent: a machine already at `version` is left as it is (an update
   * step that runs again after a crash writes nothing twice). The replaced instance id, or
   * undefined when there was nothing to do.
   */
  replaceVersion(id: string, config: MachineConfig, version: string): string | undefined {
    return this.db.transaction(() => {
      const machine = this.get(id);
      if (!machine || machine.instance_id === version) return undefined;
      const now = new Date().toISOString();
      this.db
        .prepare('UPDATE machines SET config = ?, instance_id = ?, updated_at = ? WHERE id = ?')
        .run(JSON.stringify(config), version, now, id);
      this.#addVersion(id, version, config, now);
      this.addEvent(id, {
        type: 'update',
        status: 'replaced',
        source: 'flyd',
        request: { instance_id: machine.instance_id, replaced_by: version },
      });
      return machine.instance_id;
    })();
  }

  /**
   * Every config the machine has had, newest first (a version per create and update), each with
   * its state as Fly reports a version's: `replaced` for the ones an update superseded, the
   * machine's own state for the current one.
   */
  versions(id: string): MachineVersion[] {
    const machine = this.get(id);
    const rows = this.db
      .prepare(
        'SELECT version, config, created_at FROM machine_versions WHERE machine_id = ? ORDER BY version DESC',
      )
      .all(id) as { version: string; config: string; created_at: string }[];
    return rows.map((row) => ({
      version: row.version,
      user_config: JSON.parse(row.config) as MachineConfig,
      created_at: row.created_at,
      state: row.version === machine?.instance_id ? machine.state : 'replaced',
    }));
  }

  #addVersion(id: string, version: string, config: MachineConfig, at: string): void {
    this.db
      .prepare('INSERT OR IGNORE INTO machine_versions VALUES (?, ?, ?, ?)')
      .run(id, version, JSON.stringify(config), at);
  }

  addEvent(machineId: string, event: Omit<MachineEvent, 'timestamp'>): void {
    this.db
      .prepare(
        'INSERT INTO machine_events (machine_id, type, status, source, request, timestamp) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(
        machineId,
        event.type,
        event.status,
        event.source,
        event.request === undefined ? null : JSON.stringify(event.request),
        Date.now(),
      );
    // A machine crash-looping under `always` adds events without end: keep the newest.
    this.db
      .prepare(
        `DELETE FROM machine_events WHERE machine_id = @machine AND seq <= (SELECT seq
           FROM machine_events WHERE machine_id = @machine ORDER BY seq DESC LIMIT 1 OFFSET @keep)`,
      )
      .run({ machine: machineId, keep: this.eventsMax });
  }

  /** The newest events first, as Fly lists them. */
  events(machineId: string, limit = 50): MachineEvent[] {
    const rows = this.db
      .prepare(
        'SELECT type, status, source, request, timestamp FROM machine_events WHERE machine_id = ? ORDER BY seq DESC LIMIT ?',
      )
      .all(machineId, limit) as {
      type: string;
      status: string;
      source: string;
      request: string | null;
      timestamp: number;
    }[];
    return rows.map((row) => ({
      ...row,
      request: row.request === null ? undefined : JSON.parse(row.request),
    }));
  }

  /** Forgets a machine that moved to another worker: its record, events and versions. */
  remove(id: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM machine_events WHERE machine_id = ?').run(id);
      this.db.prepare('DELETE FROM machine_versions WHERE machine_id = ?').run(id);
      this.db.prepare('DELETE FROM machines WHERE id = ?').run(id);
    })();
  }

  count(): number {
    return (
      this.db.prepare("SELECT count(*) AS n FROM machines WHERE state != 'destroyed'").get() as {
        n: number;
      }
    ).n;
  }
}

function decode(row: Row): MachineRecord {
  return {
    ...row,
    config: JSON.parse(row.config) as MachineConfig,
    cordoned: Boolean(row.cordoned),
  };
}
