/** What one query may return and take; past a bound its stream ends with an error event. */
export interface QueryLimits {
  rowsMax: number;
  /** Bytes of NDJSON one answer may hold. */
  bytesMax: number;
  timeMs: number;
}

/** The agent asks a query process for one query. */
export interface QueryRequest {
  id: number;
  sql: string;
  params: unknown[] | Record<string, unknown>;
  limits: QueryLimits;
}

/** How a query's answer ended. */
export type QueryOutcome = 'ok' | 'error' | 'cut';

/**
 * A query process's messages: `ready` once its connection is open, then for each query pieces of
 * its NDJSON answer, the last one with `end`.
 */
export type QueryAnswer = { ready: true } | { id: number; text: string; end?: QueryOutcome };
