/** Error codes of the fleet key and sealed values; the README lists the same table. */
export const FleetKeyErrors = {
  FLEET_KEY_ERR_FILE: 'the fleet key file is missing, unreadable or shorter than 16 bytes',
  FLEET_KEY_ERR_SEALED_FORMAT: 'a sealed value is not in a format or version this code knows',
  FLEET_KEY_ERR_UNSEAL:
    'a sealed value failed authentication: tampered, moved to another row, or sealed with another fleet key',
} as const;

export type FleetKeyErrorCode = keyof typeof FleetKeyErrors;

/** A fleet key that cannot be read, or a sealed value that cannot be opened; never the secret. */
export class FleetKeyError extends Error {
  constructor(
    readonly code: FleetKeyErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'FleetKeyError';
  }
}
