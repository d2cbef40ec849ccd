import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { FlapsClient } from '@fleet/flaps-client';
import { CliError, exitCodes } from './errors.js';

/** What `fleet auth login` keeps: where the Machines API is and the token to present. */
export interface Settings {
  api_url?: string;
  token?: string;
}

/** The address of `npm start`'s fleet, used when nothing else names one. */
export const defaultApiUrl = 'http://127.0.0.1:4280';

/**
 * The settings file: `$FLEET_CONFIG_DIR/config.json`, else `$XDG_CONFIG_HOME/fleet/config.json`,
 * else `~/.config/fleet/config.json`.
 */
export function settingsFile(env: NodeJS.ProcessEnv = process.env): string {
  const dir =
    env.FLEET_CONFIG_DIR ?? join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'fleet');
  return join(dir, 'config.json');
}

export function readSettings(file = settingsFile()): Settings {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return {};
  }
  try {
    const parsed = JSON.parse(text) as Settings;
    return typeof parsed === 'object' && parsed !== null ? parsed : {};
  } catch (error) {
    throw new CliError(`${file} is not JSON (${(error as Error).message}): fix or delete it`);
  }
}

/** Writes the settings readable by their owner only: the file holds a token. */
export function writeSettings(settings: Settings, file = settingsFile()): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${JSON.stringify(settings, null, 2)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
}

export function removeSettings(file = settingsFile()): void {
  rmSync(file, { force: true });
}

/** The flags every command takes to override the settings. */
export interface ConnectionFlags {
  apiUrl?: string;
  accessToken?: string;
}

/** flags, then FLEET_API_URL / FLEET_API_TOKEN, then the settings file, then the defaults. */
export function connection(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env) {
  const settings = readSettings(settingsFile(env));
  const set = (value: string | undefined) => (value === '' ? undefined : value); // VAR= is unset
  const apiUrl = flags.apiUrl ?? set(env.FLEET_API_URL) ?? settings.api_url ?? defaultApiUrl;
  const token = flags.accessToken ?? set(env.FLEET_API_TOKEN) ?? settings.token;
  return { apiUrl, token };
}

/** A client of the Machines API as the flags and settings say; a token is required. */
export function client(flags: ConnectionFlags): FlapsClient {
  const { apiUrl, token } = connection(flags);
  if (token === undefined)
    throw new CliError(
      'no API token: log in with `fleet auth login --token TOKEN` (npm start prints it) or set FLEET_API_TOKEN',
      exitCodes.unreachable,
    );
  try {
    new URL(apiUrl);
  } catch {
    throw new CliError(`the API URL ${apiUrl} is not a URL`, exitCodes.usage);
  }
  return new FlapsClient(apiUrl.replace(/\/+$/, ''), token);
}
