/** A statement in any of Corrosion's four forms. */
export type Statement =
  | string
  | [string, unknown[]]
  | { query: string; params?: unknown[]; named_params?: Record<string, unknown> };

export interface ExecResult {
  rows_affected: number;
  time: number;
}

export interface TransactionAnswer {
  results: ExecResult[];
  time: number;
  /** The agent's db_version of this transaction; null when it changed nothing. */
  version: number | null;
  actor_id: string;
}

export interface QueryAnswer {
  columns: string[];
  rows: unknown[][];
}

/** What `watch()` reports, in order: a reset, the current rows, ready, then changes. */
export type WatchEvent =
  | { type: 'reset'; columns: string[] }
  | { type: 'row'; rowid: number; cells: unknown[] }
  | { type: 'ready'; changeId: number }
  | {
      type: 'change';
      kind: 'insert' | 'update' | 'delete';
      rowid: number;
      cells: unknown[];
      changeId: number;
    };

/** One NDJSON line of a query or subscription stream (Corrosion's QueryEvent). */
export type QueryEvent =
  | { columns: string[] }
  | { row: [number, unknown[]] }
  | { eoq: { time: number; change_id?: number } }
  | { change: ['insert' | 'update' | 'delete', number, unknown[], number] }
  | { error: string };
