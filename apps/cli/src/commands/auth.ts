import { FlapsClient } from '@fleet/flaps-client';
import { Command } from 'commander';
import { CliError, exitCodes } from '../errors.js';
import { say } from '../output.js';
import { connection, removeSettings, settingsFile, writeSettings } from '../settings.js';
import { flagsOf } from './shared.js';

/** `fleet auth login|logout|token`: where the Machines API is and the token for it. */
export function authCommand(): Command {
  const auth = new Command('auth').description('log in to a fleet');
  auth
    .command('login')
    .description('keep an API URL and token in the settings file (checked against the API first)')
    .requiredOption('--token <token>', 'the API token (`npm start` prints the local one)')
    .action(async (options: { token: string }, command: Command) => {
      const flags = flagsOf(command);
      const apiUrl = flags.apiUrl ?? connection(flags).apiUrl;
      // Only a token the API takes is kept.
      await new FlapsClient(apiUrl, options.token).listApps();
      writeSettings({ api_url: apiUrl, token: options.token });
      say(`logged in to ${apiUrl} (settings in ${settingsFile()})`);
    });
  auth
    .command('logout')
    .description('forget the kept URL and token')
    .action(() => {
      removeSettings();
      say('logged out');
    });
  auth
    .command('token')
    .description('print the token in use')
    .action((_options: unknown, command: Command) => {
      const { token } = connection(flagsOf(command));
      if (token === undefined)
        throw new CliError('no token: `fleet auth login --token TOKEN`', exitCodes.unreachable);
      process.stdout.write(`${token}\n`);
    });
  return auth;
}
