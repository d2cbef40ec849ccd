import assert from 'node:assert/strict';

/**
 * An error a client caused or should see: rendered as `{"error": message, "code": code}` with
 * `statusCode`. Each app declares its own codes in its `errors.ts` registry.
 */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** An app's error codes, each with its HTTP status and what it means (its README's table). */
export type ErrorRegistry = Record<string, readonly [status: number, meaning: string]>;

/**
 * The factory of a registry's errors (as `@fastify/error` makes one per code): `error(code,
 * message)` is an HttpError with the code's status, so a code cannot be thrown with another
 * status, nor one missing from the registry (and so from the README) thrown at all.
 */
export function defineErrors<const Registry extends ErrorRegistry>(
  registry: Registry,
): (code: keyof Registry & string, message: string) => HttpError {
  return (code, message) => {
    const entry = registry[code];
    assert.ok(entry, `error code ${code} is not in its registry`); // the type allows only its codes
    return new HttpError(entry[0], code, message);
  };
}
