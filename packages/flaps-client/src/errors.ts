/**
 * A Machines API answer that was not 2xx: its status, Fly's `{"error": ...}` message and Fleet's
 * stable `code` when the body had one; or the API could not be reached (`status` 0).
 */
export class FlapsError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'FlapsError';
  }
}
