import type { ErrorRegistry } from './errors.js';

/**
 * The answers `createHttpServer` gives by itself, the same in every server (each server's own
 * codes are in its `errors.ts`); the README lists the same table.
 */
export const HttpErrorCodes = {
  BAD_REQUEST: [
    400,
    "the request failed its route's JSON schema (the message names the field), or fastify refused it without a code of its own",
  ],
  BAD_JSON: [400, 'a body sent as application/json that is not JSON'],
  NO_ROUTE: [404, 'no route for the method and path'],
  INTERNAL: [
    500,
    'an unexpected failure (or a 5xx of fastify), logged; the answer carries no detail',
  ],
} as const satisfies ErrorRegistry;

/** Errors of the shared pieces that are thrown, never answered; the README lists them too. */
export const ServiceErrorCodes = {
  USAGE_ERR: 'a bad flag, value or config file (`UsageError`): `runMain` prints it and exits 2',
  STATE_LOCKED:
    "another live process holds the state directory's lock (`StateLockedError`, naming it)",
  FLEET_ERR_INVARIANT:
    "a state the code's own logic rules out (`InvariantError` from `invariant`/`present`): a bug in Fleet, never bad input",
} as const;

export type ServiceErrorCode = keyof typeof ServiceErrorCodes;
