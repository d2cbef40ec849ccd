import { defineErrors, type HttpError } from '@fleet/service';

/** Error codes of the corrosion agent's API; the README lists the same table. */
export const CorrosionErrors = {
  CORRO_ERR_BAD_STATEMENT: [
    400,
    'a statement is malformed, fails in SQLite, or is of the wrong kind',
  ],
  CORRO_ERR_BAD_QUERY: [400, 'a query-string parameter is not of the kind the route takes'],
  CORRO_ERR_TRANSACTION_FAILED: [
    500,
    "a statement failed in SQLite; the transaction was rolled back (Corrosion's 500)",
  ],
  CORRO_ERR_READ_ONLY: [400, 'a query or subscription was given a statement that writes'],
  CORRO_ERR_FORBIDDEN_WRITE: [
    400,
    "a transaction's statement writes something other than rows of the schema's tables (a schema change, an internal or temporary table, an attached database, a pragma); nothing ran",
  ],
  CORRO_ERR_UNSUPPORTED_QUERY: [400, 'a subscription query shape the agent cannot follow yet'],
  CORRO_ERR_UNKNOWN_SUBSCRIPTION: [404, 'no subscription with that id'],
  CORRO_ERR_UNKNOWN_SUBSCRIPTION_QUERY: [
    400,
    'a subscription was asked to resume `from` a change, but none follows that query',
  ],
  CORRO_ERR_TOO_OLD: [410, 'a resume asked for changes older than the kept history'],
  CORRO_ERR_UNAUTHORIZED: [401, 'the API token is missing or wrong'],
  CORRO_ERR_OVERLOADED: [
    503,
    "every subscription slot is in use, the route has its maximum of requests in flight, or every query process stayed busy past the query's time bound",
  ],
  CORRO_ERR_BACKUP: [
    400,
    "a backup path that is not absolute, names a file that exists (the agent's own database among them), or cannot be written",
  ],
  CORRO_ERR_SCHEMA_REFUSED: [
    400,
    'a schema reload breaks the rules or asks for a destructive change; nothing was applied',
  ],
  CORRO_ERR_SCHEMA: [
    0,
    'a schema file breaks the rules or asks for a destructive change (refused at start)',
  ],
} as const;

export type CorrosionErrorCode = keyof typeof CorrosionErrors;

/** An API error; CORRO_ERR_SCHEMA is no answer (the agent refuses to start, see SchemaError). */
export const corroError: (
  code: Exclude<CorrosionErrorCode, 'CORRO_ERR_SCHEMA'>,
  message: string,
) => HttpError = defineErrors(CorrosionErrors);

/** A schema that cannot be applied; the agent refuses to start with it. */
export class SchemaError extends Error {
  readonly code = 'CORRO_ERR_SCHEMA';
}

/**
 * A peer's breach of the replication protocols (anti-entropy sync over TCP, SWIM and broadcast
 * datagrams): no HTTP answer; the sync or the datagram is dropped, and the agent counts it by
 * code (`protocol_errors` in `/v1/status`, `corro_protocol_errors{code}`) and logs it with its
 * code (replication/protocol-errors.ts). The README's error table lists these codes too.
 */
export const ProtocolErrors = {
  CORRO_ERR_SYNC_OPENING:
    'a sync did not open with the sync state, or the peer did not answer it with its own',
  CORRO_ERR_SYNC_UNEXPECTED: 'a message other than a changeset or `done` in the middle of a sync',
  CORRO_ERR_SYNC_MALFORMED: 'an authenticated sync frame whose message does not decode',
  CORRO_ERR_SYNC_FRAME_TOO_LARGE:
    'a sync frame announced longer than 16 MiB: refused before it is read',
  CORRO_ERR_SYNC_FRAME_REJECTED: 'a sync frame of another cluster, with a bad MAC, or malformed',
  CORRO_ERR_SYNC_WRONG_CHANNEL:
    'an authenticated frame of another channel (SWIM, broadcast) on a sync stream',
  CORRO_ERR_SYNC_CLOSED_EARLY: 'the peer closed the sync before its `done`',
  CORRO_ERR_SYNC_TIMEOUT: 'a sync connection idle for 15 s',
  CORRO_ERR_BROADCAST_MALFORMED: 'an authenticated broadcast datagram that does not decode',
  CORRO_ERR_SWIM_MALFORMED:
    'an authenticated SWIM datagram that does not decode, or of a message kind or member state this build does not know',
} as const;

export type ProtocolErrorCode = keyof typeof ProtocolErrors;

/** A peer broke a gossip protocol; `code` says how (ProtocolErrors). */
export class ProtocolError extends Error {
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}
