import { ControlError, type ControlErrorCode } from './errors.js';

/**
 * The line protocol: one JSON request per line, `{"command":"catalog","args":["demo"]}`, answered
 * by one JSON line, `{"ok":true,"result":...}` or `{"ok":false,"error":{"code","message"}}`, in
 * the order the requests came.
 */
export interface ControlRequest {
  command: string;
  args: string[];
}

export type ControlAnswer =
  | { ok: true; result: unknown }
  | { ok: false; error: { code: ControlErrorCode; message: string } };

/** Bounds of the channel (TigerStyle: a limit on everything). */
export const controlLimits = {
  /** A request line longer than this closes the connection with CONTROL_ERR_LINE_TOO_LONG. */
  lineBytesMax: 4_096,
  /** Clients connected at once; one more is answered CONTROL_ERR_TOO_MANY_CLIENTS and closed. */
  clientsMax: 16,
  /** Requests of one client not yet answered; past it CONTROL_ERR_TOO_MANY_PENDING and close. */
  pendingMax: 16,
  /** Answer bytes a client has not read; past it the client is cut (it does not read). */
  unreadBytesMax: 1_048_576,
  /** A command that waits (on a catalog lock or a lazy load) is answered CONTROL_ERR_TIMEOUT past it. */
  commandTimeoutMs: 5_000,
  /** A client that sends nothing this long is closed. */
  idleTimeoutMs: 60_000,
} as const;

/** The socket's file name inside the state directory. */
export const controlSocketName = 'control.sock';

export function parseRequest(line: string): ControlRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    throw new ControlError(
      'CONTROL_ERR_BAD_REQUEST',
      `request is not JSON: ${(error as Error).message}`,
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ControlError('CONTROL_ERR_BAD_REQUEST', 'request must be a JSON object');
  }
  const { command, args = [] } = value as { command?: unknown; args?: unknown };
  if (typeof command !== 'string' || command === '') {
    throw new ControlError('CONTROL_ERR_BAD_REQUEST', 'request needs a string "command"');
  }
  if (!Array.isArray(args) || !args.every((arg) => typeof arg === 'string')) {
    throw new ControlError('CONTROL_ERR_BAD_REQUEST', '"args" must be an array of strings');
  }
  return { command, args };
}

export function answerLine(answer: ControlAnswer): string {
  return `${JSON.stringify(answer)}\n`;
}

export function errorAnswer(error: ControlError): ControlAnswer {
  return { ok: false, error: { code: error.code, message: error.message } };
}
