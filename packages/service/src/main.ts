import { UsageError } from './config.js';
import { StateLockedError } from './state-lock.js';

/**
 * Runs a server's `main`, turning a usage error into a message on stderr and exit status 2, a
 * state directory another live process holds into a message naming it and exit status 1, and
 * any other startup failure into exit status 1.
 */
export function runMain(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`error: ${error.message}\n(run with --help for the flags)\n`);
      process.exit(2);
    }
    if (error instanceof StateLockedError) {
      process.stderr.write(`error: ${error.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`fatal: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
