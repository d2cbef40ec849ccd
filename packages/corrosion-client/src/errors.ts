/** Error codes of the corrosion client; the README lists the same table. */
export const CorrosionErrorCodes = {
  CORRO_ERR_HTTP: 'the agent answered with an error status',
  CORRO_ERR_UNREACHABLE: 'the agent could not be reached or the call timed out',
  CORRO_ERR_PROTOCOL: 'the agent sent something that is not the Corrosion API shape',
  CORRO_ERR_QUERY: 'the agent reported an error in the middle of a query stream',
  CORRO_ERR_TOO_MANY_ROWS: 'a collected query passed its rowsMax (stream it with queryRows)',
} as const;

export type CorrosionErrorCode = keyof typeof CorrosionErrorCodes;

export class CorrosionError extends Error {
  constructor(
    readonly code: CorrosionErrorCode,
    message: string,
    readonly statusCode?: number,
  ) {
    super(message);
    this.name = 'CorrosionError';
  }
}
