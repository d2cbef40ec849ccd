/** flyd answered, but not with a success: its status, its error code and its message. */
export class FlydAnswerError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string | undefined,
    /** flyd's own message (`error` of its JSON body), when it gave one. */
    readonly detail: string | undefined,
    where: string,
  ) {
    super(`${where}: ${statusCode}${detail === undefined ? '' : ` ${detail}`}`);
    this.name = 'FlydAnswerError';
  }
}

/** The worker's flyd could not be reached (refused, reset, timed out before its answer). */
export class FlydUnreachableError extends Error {
  constructor(
    readonly baseUrl: string,
    cause: Error,
  ) {
    super(`worker ${baseUrl}: ${cause.message}`, { cause });
    this.name = 'FlydUnreachableError';
  }
}
