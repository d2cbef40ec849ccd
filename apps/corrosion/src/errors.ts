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
    'every subscription slot is in use, or the route has its maximum of requests in flight',
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
