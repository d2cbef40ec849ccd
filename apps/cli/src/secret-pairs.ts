import { CliError, exitCodes } from './errors.js';

/** A secret's name: an environment variable's, as flaps requires. */
const namePattern = /^[A-Za-z_][A-Za-z0-9_]{0,255}$/;

/** Checks a secret's name, or fails as a usage error naming it. */
export function checkSecretName(name: string): string {
  if (!namePattern.test(name))
    throw new CliError(
      `"${name}" is not a secret name: letters, digits and _, not starting with a digit`,
      exitCodes.usage,
    );
  return name;
}

/**
 * `NAME=VALUE` arguments as a map, as `fly secrets set` takes them: split at the first `=`, so a
 * value may hold `=`; an empty value is allowed, a missing `=` or a bad name is a usage error.
 * The messages never repeat a value.
 */
export function parseSecretPairs(pairs: string[]): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [index, pair] of pairs.entries()) {
    const at = pair.indexOf('=');
    // Not shown: an argument without `=` may well be a value typed on its own.
    if (at < 0) throw new CliError(`argument ${index + 1} is not NAME=VALUE`, exitCodes.usage);
    values[checkSecretName(pair.slice(0, at))] = pair.slice(at + 1);
  }
  return values;
}

/**
 * `NAME=VALUE` lines, as `fly secrets import` reads them from stdin (a .env file): blank lines
 * and `#` comments skipped, a value split at the first `=`, and a value of several lines between
 * `NAME="""` and a line `"""`. The messages name lines, never values.
 */
export function parseSecretLines(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index] as string;
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const at = line.indexOf('=');
    if (at < 0) throw new CliError(`line ${index + 1} is not NAME=VALUE`, exitCodes.usage);
    const name = checkSecretName(line.slice(0, at).trim());
    const value = line.slice(at + 1);
    if (value !== '"""') {
      values[name] = value;
      continue;
    }
    const end = lines.indexOf('"""', index + 1);
    if (end < 0)
      throw new CliError(`line ${index + 1}: ${name}'s """ is never closed`, exitCodes.usage);
    values[name] = lines.slice(index + 1, end).join('\n');
    index = end;
  }
  if (Object.keys(values).length === 0)
    throw new CliError('no NAME=VALUE line on stdin', exitCodes.usage);
  return values;
}
