import { FlapsError } from '@fleet/flaps-client';

/** Exit codes scripts can rely on. */
export const exitCodes = {
  ok: 0,
  /** The operation failed: the API refused it, or what it waited for did not happen. */
  failed: 1,
  /** The command line was wrong: unknown command or flag, missing argument, bad value. */
  usage: 2,
  /** The Machines API could not be reached, or refused the token. */
  unreachable: 3,
} as const;

/** An error the command line reports as one line to stderr, then exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = exitCodes.failed,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** What to tell the person, and the exit code, for anything a command threw. */
export function explain(error: unknown): { message: string; exitCode: number } {
  if (error instanceof CliError) return { message: error.message, exitCode: error.exitCode };
  if (error instanceof FlapsError) {
    if (error.status === 0)
      return {
        message: `${error.message}\n(is the fleet running? set the address with \`fleet auth login --api-url URL\` or FLEET_API_URL)`,
        exitCode: exitCodes.unreachable,
      };
    if (error.status === 401)
      return {
        message: `the Machines API refused the token: ${error.message}\n(log in with \`fleet auth login --token TOKEN\` or set FLEET_API_TOKEN)`,
        exitCode: exitCodes.unreachable,
      };
    return { message: error.message, exitCode: exitCodes.failed };
  }
  return { message: (error as Error).message ?? String(error), exitCode: exitCodes.failed };
}
