import type { Database as Db, Statement } from 'better-sqlite3';
import type { RunStatus } from './errors.js';

/** A run as flyd.db keeps it (and the API shows it). */
export interface RunInfo {
  id: string;
  machine_id: string;
  action: string;
  status: RunStatus;
  retries: number;
  current_step: string | null;
  error: string | null;
  /** The machine's named queue the run waited in, if any. */
  queue: string | null;
  /** The run this one starts after. */
  run_after: string | null;
  /** The earliest time the run starts (ISO). */
  start_at: string | null;
  parent_id: string | null;
  /** 1 once the action's finalizer ran for a finished run. */
  finalized: number;
  created_at: string;
  updated_at: string;
}

export interface StepRecord {
  step: string;
  result: unknown;
  started_at: string | null;
  completed_at: string;
}

/** A finished or live run with its completed steps and its child runs. */
export interface RunHistory extends RunInfo {
  request: unknown;
  steps: StepRecord[];
  children: RunInfo[];
}

const runColumns =
  'id, machine_id, action, status, retries, current_step, error, queue, run_after, start_at, parent_id, finalized, created_at, updated_at';

/**
 * The engine's tables in flyd.db (`fsm_runs`, `fsm_steps`, created by db.ts): the columns added
 * for queues, delays, run-after, children and finalizers are added here when missing. Rows of an
 * older flyd count as finalized (`DEFAULT 1`), so an upgrade does not call old finalizers again.
 */
export class RunStore {
  constructor(private readonly db: Db) {
    for (const [table, column, definition] of [
      ['fsm_runs', 'queue', 'TEXT'],
      ['fsm_runs', 'run_after', 'TEXT'],
      ['fsm_runs', 'start_at', 'TEXT'],
      ['fsm_runs', 'parent_id', 'TEXT'],
      ['fsm_runs', 'child_key', 'TEXT'],
      ['fsm_runs', 'finalized', 'INTEGER NOT NULL DEFAULT 1'],
      ['fsm_steps', 'started_at', 'TEXT'],
    ] as const) {
      const columns = db.prepare('SELECT name FROM pragma_table_info(?)').all(table) as {
        name: string;
      }[];
      if (!columns.some((existing) => existing.name === column))
        db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`);
    }
    db.exec('CREATE INDEX IF NOT EXISTS fsm_runs_parent ON fsm_runs (parent_id)');
    db.exec('CREATE INDEX IF NOT EXISTS fsm_runs_machine ON fsm_runs (machine_id, id)');
  }

  insert(run: {
    id: string;
    machineId: string;
    action: string;
    request: unknown;
    status: 'pending' | 'running';
    queue: string | null;
    runAfter: string | null;
    startAt: string | null;
    parentId: string | null;
    childKey: string | null;
  }): void {
    const now = new Date().toISOString();
    this.db
      .prepare(
        `INSERT INTO fsm_runs (id, machine_id, action, request, status, queue, run_after, start_at,
           parent_id, child_key, finalized, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`,
      )
      .run(
        run.id,
        run.machineId,
        run.action,
        JSON.stringify(run.request ?? null),
        run.status,
        run.queue,
        run.runAfter,
        run.startAt,
        run.parentId,
        run.childKey,
        now,
        now,
      );
  }

  get(id: string): (RunInfo & { request: string }) | undefined {
    return this.db.prepare(`SELECT ${runColumns}, request FROM fsm_runs WHERE id = ?`).get(id) as
      | (RunInfo & { request: string })
      | undefined;
  }

  child(parentId: string, key: string): RunInfo | undefined {
    return this.db
      .prepare(`SELECT ${runColumns} FROM fsm_runs WHERE parent_id = ? AND child_key = ?`)
      .get(parentId, key) as RunInfo | undefined;
  }

  /** Runs in one of `statuses`, oldest first. */
  withStatus(...statuses: RunStatus[]): (RunInfo & { request: string })[] {
    return this.db
      .prepare(
        `SELECT ${runColumns}, request FROM fsm_runs WHERE status IN (${statuses.map(() => '?').join(', ')}) ORDER BY id`,
      )
      .all(...statuses) as (RunInfo & { request: string })[];
  }

  /** Finished runs whose finalizer has not run yet (flyd died in between). */
  unfinalized(): (RunInfo & { request: string })[] {
    return this.db
      .prepare(
        `SELECT ${runColumns}, request FROM fsm_runs
         WHERE finalized = 0 AND status NOT IN ('pending', 'running') ORDER BY id`,
      )
      .all() as (RunInfo & { request: string })[];
  }

  queued(machineId: string, queue: string): number {
    const row = this.db
      .prepare(
        "SELECT count(*) AS n FROM fsm_runs WHERE machine_id = ? AND queue = ? AND status = 'pending'",
      )
      .get(machineId, queue) as { n: number };
    return row.n;
  }

  results(runId: string): Record<string, unknown> {
    const steps = this.db
      .prepare('SELECT step, result FROM fsm_steps WHERE run_id = ?')
      .all(runId) as { step: string; result: string }[];
    return Object.fromEntries(steps.map((step) => [step.step, JSON.parse(step.result)]));
  }

  update(id: string, fields: Partial<Pick<RunInfo, 'status' | 'current_step' | 'error'>>): void {
    const names = Object.keys(fields);
    this.db
      .prepare(
        `UPDATE fsm_runs SET ${names.map((name) => `${name} = ?`).join(', ')}, updated_at = ? WHERE id = ?`,
      )
      .run(...Object.values(fields), new Date().toISOString(), id);
  }

  failedAttempt(id: string, message: string, retried: boolean): void {
    this.db
      .prepare('UPDATE fsm_runs SET error = ?, retries = retries + ?, updated_at = ? WHERE id = ?')
      .run(message, retried ? 1 : 0, new Date().toISOString(), id);
  }

  /**
   * Records that a finished run's finalizer ran, and keeps the machine's history bounded: of its
   * finished, finalized top-level runs only the newest `historyMax` stay, with their children and
   * steps (a crash-looping machine would otherwise add runs without end). One transaction.
   */
  markFinalized(id: string, machineId: string, historyMax: number): void {
    this.db.transaction(() => {
      this.db.prepare('UPDATE fsm_runs SET finalized = 1 WHERE id = ?').run(id);
      this.#pruneStatements ??= pruneStatements(this.db);
      for (const statement of this.#pruneStatements) {
        statement.run({ machine: machineId, keep: historyMax });
      }
    })();
  }

  #pruneStatements: Statement[] | undefined;

  /** Commits one completed step (its own transaction: the durable point a resume starts from). */
  completeStep(runId: string, step: string, result: unknown, startedAt: string): void {
    this.db
      .prepare(
        'INSERT OR REPLACE INTO fsm_steps (run_id, step, result, started_at, completed_at) VALUES (?, ?, ?, ?, ?)',
      )
      .run(runId, step, JSON.stringify(result), startedAt, new Date().toISOString());
  }

  /** Runs of one machine, newest first. */
  machineRuns(machineId: string, limit: number): RunInfo[] {
    return this.db
      .prepare(`SELECT ${runColumns} FROM fsm_runs WHERE machine_id = ? ORDER BY id DESC LIMIT ?`)
      .all(machineId, limit) as RunInfo[];
  }

  history(id: string): RunHistory | undefined {
    const run = this.get(id);
    if (!run) return undefined;
    const steps = this.db
      .prepare(
        'SELECT step, result, started_at, completed_at FROM fsm_steps WHERE run_id = ? ORDER BY completed_at, rowid',
      )
      .all(id) as (StepRecord & { result: string })[];
    const children = this.db
      .prepare(`SELECT ${runColumns} FROM fsm_runs WHERE parent_id = ? ORDER BY id`)
      .all(id) as RunInfo[];
    return {
      ...run,
      request: JSON.parse(run.request),
      steps: steps.map((step) => ({ ...step, result: JSON.parse(step.result) })),
      children,
    };
  }
}

/**
 * The machine's finished, finalized top-level runs past the newest N, none of whose children is
 * still open; then their children; the steps of both first. Parameters: @machine, @keep (N).
 */
const oldRuns = `WITH old AS (
  SELECT r.id FROM fsm_runs r
  WHERE r.machine_id = @machine AND r.parent_id IS NULL AND r.finalized = 1
    AND r.status NOT IN ('pending', 'running')
    AND NOT EXISTS (SELECT 1 FROM fsm_runs c WHERE c.parent_id = r.id
      AND (c.status IN ('pending', 'running') OR c.finalized = 0))
  ORDER BY r.id DESC LIMIT -1 OFFSET @keep),
doomed AS (SELECT id FROM old UNION ALL SELECT id FROM fsm_runs WHERE parent_id IN old)`;

function pruneStatements(db: Db): Statement[] {
  return [
    db.prepare(`${oldRuns} DELETE FROM fsm_steps WHERE run_id IN doomed`),
    db.prepare(`${oldRuns} DELETE FROM fsm_runs WHERE id IN doomed`),
  ];
}
