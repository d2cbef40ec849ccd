import type { Database as Db } from 'better-sqlite3';
import Database from 'better-sqlite3';

/**
 * flyd's own SQLite (WAL): the machines it owns, their event log, and the FSM runs and steps.
 * Each FSM step is committed in its own transaction, so a crashed flyd resumes after the last
 * step that completed.
 */
export function openDatabase(path: string): Db {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.exec(`
    CREATE TABLE IF NOT EXISTS machines (
      id TEXT PRIMARY KEY,
      app TEXT NOT NULL,
      name TEXT NOT NULL,
      region TEXT NOT NULL,
      instance_id TEXT NOT NULL,
      state TEXT NOT NULL,
      config TEXT NOT NULL,
      image_ref TEXT NOT NULL,
      port INTEGER,
      pid INTEGER,
      stop_reason TEXT,
      cordoned INTEGER NOT NULL DEFAULT 0,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS machines_app ON machines (app);
    CREATE TABLE IF NOT EXISTS machine_events (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      machine_id TEXT NOT NULL,
      type TEXT NOT NULL,
      status TEXT NOT NULL,
      source TEXT NOT NULL,
      request TEXT,
      timestamp INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS machine_events_machine ON machine_events (machine_id, seq);
    CREATE TABLE IF NOT EXISTS fsm_runs (
      id TEXT PRIMARY KEY,
      machine_id TEXT NOT NULL,
      action TEXT NOT NULL,
      request TEXT NOT NULL,
      status TEXT NOT NULL,
      current_step TEXT,
      error TEXT,
      retries INTEGER NOT NULL DEFAULT 0,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS machine_versions (
      machine_id TEXT NOT NULL,
      version TEXT NOT NULL,
      config TEXT NOT NULL,
      created_at TEXT NOT NULL,
      PRIMARY KEY (machine_id, version)
    );
    CREATE INDEX IF NOT EXISTS fsm_runs_active ON fsm_runs (status, machine_id);
    CREATE TABLE IF NOT EXISTS fsm_steps (
      run_id TEXT NOT NULL,
      step TEXT NOT NULL,
      result TEXT NOT NULL,
      completed_at TEXT NOT NULL,
      PRIMARY KEY (run_id, step)
    );
    CREATE TABLE IF NOT EXISTS volumes (
      id TEXT PRIMARY KEY,
      app TEXT NOT NULL,
      name TEXT NOT NULL,
      region TEXT NOT NULL,
      state TEXT NOT NULL,
      size_gb INTEGER NOT NULL,
      encrypted INTEGER NOT NULL DEFAULT 0,
      snapshot_retention INTEGER NOT NULL DEFAULT 5,
      auto_backup_enabled INTEGER NOT NULL DEFAULT 0,
      attached_machine_id TEXT,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS volume_snapshots (
      id TEXT PRIMARY KEY,
      volume_id TEXT NOT NULL,
      app TEXT NOT NULL,
      size INTEGER NOT NULL,
      digest TEXT NOT NULL,
      created_at TEXT NOT NULL
    );
  `);
  // Databases made by an earlier flyd get the columns added since.
  addColumnIfMissing(db, 'fsm_runs', 'retries', 'INTEGER NOT NULL DEFAULT 0');
  addColumnIfMissing(db, 'machines', 'cordoned', 'INTEGER NOT NULL DEFAULT 0');
  addColumnIfMissing(db, 'machines', 'ip', 'TEXT');
  return db;
}

function addColumnIfMissing(db: Db, table: string, column: string, definition: string): void {
  const columns = db.prepare('SELECT name FROM pragma_table_info(?)').all(table) as {
    name: string;
  }[];
  if (!columns.some((existing) => existing.name === column)) {
    db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`);
  }
}
