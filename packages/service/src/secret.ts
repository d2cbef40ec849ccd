import { readFileSync } from 'node:fs';
import { UsageError } from './config.js';

export interface SecretSource {
  /** The flag naming a file that holds the secret, e.g. `token-file` (shown in errors). */
  fileFlag: string;
  /** That flag's value, if given. */
  file: string | undefined;
  /** The environment variable that may hold it instead, e.g. `FLYD_TOKEN`. */
  variable: string;
  required?: boolean;
}

/**
 * A secret (a token) from the file a `--…-file` flag names, else from an environment variable —
 * never from a flag's value: every local user can read any process's command line (`ps`), while
 * a file has its own owner and mode and /proc/<pid>/environ is readable by the process's user
 * only. The variable is removed from this process's environment once read, so that nothing it
 * starts inherits it. A trailing newline in the file is ignored.
 */
export function readSecret(source: SecretSource & { required: true }): string;
export function readSecret(source: SecretSource): string | undefined;
export function readSecret(source: SecretSource): string | undefined {
  const fromVariable = process.env[source.variable];
  delete process.env[source.variable];
  let secret = fromVariable;
  if (source.file !== undefined) {
    try {
      secret = readFileSync(source.file, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      throw new UsageError(`cannot read --${source.fileFlag}: ${(error as Error).message}`);
    }
    if (secret === '') throw new UsageError(`--${source.fileFlag} ${source.file} is empty`);
  }
  if (secret === '') secret = undefined;
  if (secret === undefined && source.required) {
    throw new UsageError(
      `missing secret: set ${source.variable} or give --${source.fileFlag} (a file holding it)`,
    );
  }
  return secret;
}
