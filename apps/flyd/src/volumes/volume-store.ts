import type { Database as Db } from 'better-sqlite3';
import { RecordTable } from '../record-table-store.js';

/** A volume as flyd records it: a directory of this worker (`<data-dir>/volumes/<id>`). */
export interface VolumeRecord {
  id: string;
  app: string;
  name: string;
  region: string;
  /** `created`, or `destroyed` once its directory is gone. */
  state: 'created' | 'destroyed';
  size_gb: number;
  encrypted: boolean;
  snapshot_retention: number;
  auto_backup_enabled: boolean;
  attached_machine_id: string | null;
  created_at: string;
  updated_at: string;
}

/** A snapshot: a copy of a volume's directory (`<data-dir>/snapshots/<id>`). */
export interface SnapshotRecord {
  id: string;
  volume_id: string;
  app: string;
  /** Bytes of the files copied. */
  size: number;
  digest: string;
  created_at: string;
}

type Row = Omit<VolumeRecord, 'encrypted' | 'auto_backup_enabled'> & {
  encrypted: number;
  auto_backup_enabled: number;
};

/** The `volumes` and `volume_snapshots` tables of flyd's database. */
export class VolumeStore {
  readonly #table: RecordTable<Row, VolumeRecord>;

  constructor(private readonly db: Db) {
    this.#table = new RecordTable(db, 'volumes', decode);
  }

  get(id: string): VolumeRecord | undefined {
    return this.#table.get(id);
  }

  list(app?: string): VolumeRecord[] {
    return this.#table.list(app);
  }

  /** Inserts the volume, or replaces the record of the same id (a migrate that runs again). */
  put(volume: VolumeRecord): void {
    this.db
      .prepare(
        `INSERT OR REPLACE INTO volumes (id, app, name, region, state, size_gb, encrypted, snapshot_retention, auto_backup_enabled, attached_machine_id, created_at, updated_at)
         VALUES (@id, @app, @name, @region, @state, @size_gb, @encrypted, @snapshot_retention, @auto_backup_enabled, @attached_machine_id, @created_at, @updated_at)`,
      )
      .run({
        ...volume,
        encrypted: Number(volume.encrypted),
        auto_backup_enabled: Number(volume.auto_backup_enabled),
      });
  }

  update(
    id: string,
    changes: Partial<
      Pick<
        VolumeRecord,
        'state' | 'size_gb' | 'snapshot_retention' | 'auto_backup_enabled' | 'attached_machine_id'
      >
    >,
  ): VolumeRecord {
    const values: Record<string, unknown> = { ...changes };
    if (changes.auto_backup_enabled !== undefined)
      values.auto_backup_enabled = Number(changes.auto_backup_enabled); // SQLite has no booleans
    return this.#table.update(id, values);
  }

  /** Forgets a volume that moved to another worker (its row there is the truth now). */
  delete(id: string): void {
    this.db.prepare('DELETE FROM volumes WHERE id = ?').run(id);
  }

  addSnapshot(snapshot: SnapshotRecord): void {
    this.db
      .prepare(
        'INSERT OR REPLACE INTO volume_snapshots (id, volume_id, app, size, digest, created_at) VALUES (@id, @volume_id, @app, @size, @digest, @created_at)',
      )
      .run(snapshot);
  }

  snapshot(id: string): SnapshotRecord | undefined {
    return this.db.prepare('SELECT * FROM volume_snapshots WHERE id = ?').get(id) as
      | SnapshotRecord
      | undefined;
  }

  snapshots(volumeId: string): SnapshotRecord[] {
    return this.db
      .prepare('SELECT * FROM volume_snapshots WHERE volume_id = ? ORDER BY created_at, id')
      .all(volumeId) as SnapshotRecord[];
  }
}

function decode(row: Row): VolumeRecord {
  return {
    ...row,
    encrypted: Boolean(row.encrypted),
    auto_backup_enabled: Boolean(row.auto_backup_enabled),
  };
}
