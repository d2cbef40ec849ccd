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
