import type { Machine } from '@fleet/flaps-client';
import type { Command } from 'commander';
import { appName } from '../app-name.js';
import { CliError, exitCodes } from '../errors.js';
import { type ConnectionFlags, client } from '../settings.js';

/** The flags a command sees: its own and the program's (`--api-url`, `--access-token`). */
export interface CommonFlags extends ConnectionFlags {
  app?: string;
  config?: string;
  json?: boolean;
}

export function flagsOf(command: Command): CommonFlags {
  return command.optsWithGlobals<CommonFlags>();
}

/** Adds `-a/--app` and `-c/--config` (the fly.toml that names the app). */
/** A count or size a flag or argument gives: a whole number above 0, else a usage error. */
export function wholeNumber(text: string, what: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0)
    throw new CliError(`${what} is a whole number above 0, not ${text}`, exitCodes.usage);
  return value;
}

export function withApp(command: Command): Command {
  return command
    .option('-a, --app <name>', 'the app (default: the `app` of ./fly.toml)')
    .option('-c, --config <file>', 'the fly.toml that names the app');
}

export function withJson(command: Command): Command {
  return command.option('--json', 'print JSON instead of a table');
}

/** The client and the app name a command about an app needs. */
export function appContext(command: Command) {
  const flags = flagsOf(command);
  return { flags, app: appName(flags), flaps: client(flags) };
}

/** A machine's row in the tables of `status` and `machines list`. */
export function machineRow(machine: Machine): string[] {
  const checks = machine.checks ?? [];
  const passing = checks.filter((check) => check.status === 'passing').length;
  const image = (machine.config as { image?: string }).image ?? '';
  return [
    machine.id,
    machine.name,
    machine.state,
    machine.region,
    checks.length === 0 ? '-' : `${passing}/${checks.length}`,
    image,
    machine.updated_at,
  ];
}

export const machineHead = ['ID', 'NAME', 'STATE', 'REGION', 'CHECKS', 'IMAGE', 'UPDATED'];
