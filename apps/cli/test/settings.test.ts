import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FlapsError } from '@fleet/flaps-client';
import { describe, expect, it } from 'vitest';
import { appName } from '../src/app-name.js';
import { CliError, explain } from '../src/errors.js';
import { connection, readSettings, settingsFile, writeSettings } from '../src/settings.js';
import { folderPerTest } from './temp-folder.js';

describe('where the command line connects, and which app it means', () => {
  const folder = folderPerTest('fleet-cli-settings-');

  it('takes flags over the environment over the settings file over the default', () => {
    const env = { FLEET_CONFIG_DIR: folder.path };
    expect(connection({}, env)).toEqual({ apiUrl: 'http://127.0.0.1:4280', token: undefined });
    writeSettings({ api_url: 'http://file:1', token: 'from-file' }, settingsFile(env));
    expect(statSync(settingsFile(env)).mode & 0o777).toBe(0o600);
    expect(connection({}, env)).toEqual({ apiUrl: 'http://file:1', token: 'from-file' });
    const withEnv = { ...env, FLEET_API_URL: 'http://env:2', FLEET_API_TOKEN: 'from-env' };
    expect(connection({}, withEnv)).toEqual({ apiUrl: 'http://env:2', token: 'from-env' });
    expect(connection({ apiUrl: 'http://flag:3', accessToken: 'flag' }, withEnv)).toEqual({
      apiUrl: 'http://flag:3',
      token: 'flag',
    });
    // An empty variable is unset, as a shell's `VAR=` means.
    expect(connection({}, { ...env, FLEET_API_TOKEN: '' }).token).toBe('from-file');
  });

  it('names the settings folder from XDG_CONFIG_HOME, and refuses a file that is not JSON', () => {
    expect(settingsFile({ XDG_CONFIG_HOME: folder.path })).toBe(
      join(folder.path, 'fleet', 'config.json'),
    );
    writeFileSync(join(folder.path, 'config.json'), '{nope');
    expect(() => readSettings(join(folder.path, 'config.json'))).toThrow(/is not JSON/);
    expect(readSettings(join(folder.path, 'missing.json'))).toEqual({});
    expect(readFileSync(join(folder.path, 'config.json'), 'utf8')).toBe('{nope'); // left as it was
  });

  it("reads the app from -a, else from the working directory's fly.toml", () => {
    expect(appName({ app: 'given' }, folder.path)).toBe('given');
    expect(() => appName({}, folder.path)).toThrow(/pass -a APP/);
    writeFileSync(
      join(folder.path, 'fly.toml'),
      'app = "shop"\n[http_service]\ninternal_port = 8080\n',
    );
    expect(appName({}, folder.path)).toBe('shop');
    writeFileSync(join(folder.path, 'other.toml'), 'primary_region = "ams"\n');
    expect(() => appName({ config: join(folder.path, 'other.toml') }, folder.path)).toThrow(
      /has no `app/,
    );
    writeFileSync(join(folder.path, 'fly.toml'), 'app = \n');
    expect(() => appName({}, folder.path)).toThrow(/not valid TOML/);
  });

  it('turns each failure into a message and the exit code scripts rely on', () => {
    expect(explain(new CliError('bad flag', 2))).toEqual({ message: 'bad flag', exitCode: 2 });
    expect(explain(new FlapsError(0, 'cannot reach the Machines API at x')).exitCode).toBe(3);
    expect(explain(new FlapsError(401, 'missing or wrong API token')).exitCode).toBe(3);
    const refused = explain(new FlapsError(422, 'app name taken', 'FLAPS_ERR_NAME_TAKEN'));
    expect(refused).toEqual({ message: 'app name taken', exitCode: 1 });
  });
});
