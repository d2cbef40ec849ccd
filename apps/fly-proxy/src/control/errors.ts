/**
 * The control channel's error codes (the `code` of an `{"ok":false,"error":{...}}` answer), kept
 * in one registry; the README's "Control channel errors" table lists the same codes (a test
 * checks they agree).
 */
export const ControlErrors = {
  CONTROL_ERR_BAD_REQUEST:
    'the line is not a JSON object with a string `command` and string `args`',
  CONTROL_ERR_UNKNOWN_COMMAND: 'no such command; the message lists the known ones',
  CONTROL_ERR_BAD_ARGUMENTS: 'the command got too few or too many arguments',
  CONTROL_ERR_BAD_LEVEL: '`loglevel` got a level pino does not know',
  CONTROL_ERR_NO_APP: '`catalog <app>`: the catalog holds no such app (or could not load it)',
  CONTROL_ERR_LINE_TOO_LONG: 'a request line longer than the bound; the connection is closed',
  CONTROL_ERR_TOO_MANY_CLIENTS: 'more clients connected than the bound; the connection is closed',
  CONTROL_ERR_TOO_MANY_PENDING:
    'a client sent more requests than the bound without reading answers',
  CONTROL_ERR_TIMEOUT:
    'the command waited on the catalog past its bound (a lock held, a slow load)',
  CONTROL_ERR_NOT_SUPERVISED:
    '`restart` on a proxy not run by fly-proxy-watchdog (use `drain` and start a new one)',
  CONTROL_ERR_INTERNAL: 'the command failed inside the proxy (logged)',
} as const;

export type ControlErrorCode = keyof typeof ControlErrors;

/** A failure the control channel answers with its code and message (never a crash). */
export class ControlError extends Error {
  constructor(
    readonly code: ControlErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ControlError';
  }
}
