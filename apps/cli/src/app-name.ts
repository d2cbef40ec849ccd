import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { CliError, exitCodes } from './errors.js';

/**
 * The app a command is about: `-a/--app`, else the `app` of the fly.toml in the working
 * directory (or the file `-c/--config` names), as flyctl does.
 */
export function appName(flags: { app?: string; config?: string }, cwd = process.cwd()): string {
  if (flags.app !== undefined) return flags.app;
  const file = flags.config ?? join(cwd, 'fly.toml');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new CliError(
      `no app named: pass -a APP, or run where a fly.toml names one (${file} not found)`,
      exitCodes.usage,
    );
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = parse(text);
  } catch (error) {
    throw new CliError(`${file} is not valid TOML: ${(error as Error).message}`, exitCodes.usage);
  }
  if (typeof parsed.app !== 'string' || parsed.app === '')
    throw new CliError(`${file} has no \`app = "..."\`: pass -a APP`, exitCodes.usage);
  return parsed.app;
}
