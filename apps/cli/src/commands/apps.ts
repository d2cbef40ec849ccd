import { Command } from 'commander';
import { CliError, exitCodes } from '../errors.js';
import { printJson, printTable, say } from '../output.js';
import { client } from '../settings.js';
import { flagsOf, withJson } from './shared.js';

/** `fleet apps list|create|destroy`. */
export function appsCommand(): Command {
  const apps = new Command('apps').description('manage apps');

  withJson(apps.command('list').description('list the apps'))
    .option('-o, --org <slug>', 'only this organization')
    .action(async (options: { org?: string }, command: Command) => {
      const flags = flagsOf(command);
      const list = await client(flags).listApps(options.org);
      if (flags.json) return printJson(list);
      printTable(
        ['NAME', 'ORG', 'STATUS', 'MACHINES'],
        list.map((app) => [app.name, app.organization.slug, app.status, app.machine_count ?? '-']),
      );
    });

  withJson(apps.command('create').argument('<name>', 'the new app').description('create an app'))
    .option('-o, --org <slug>', 'the organization', 'personal')
    .action(async (name: string, options: { org: string }, command: Command) => {
      const flags = flagsOf(command);
      const app = await client(flags).createApp(name, options.org);
      if (flags.json) return printJson(app);
      say(`created app ${app.name} in ${app.organization.slug}`);
    });

  apps
    .command('destroy')
    .argument('<name>', 'the app')
    .option('-y, --yes', 'do it: the app, its machines and volumes are gone for good')
    .description('destroy an app with its machines and volumes')
    .action(async (name: string, options: { yes?: boolean }, command: Command) => {
      if (!options.yes)
        throw new CliError(
          `destroying ${name} removes its machines and volumes for good: run again with --yes`,
          exitCodes.usage,
        );
      await client(flagsOf(command)).destroyApp(name);
      say(`destroyed app ${name}`);
    });
  return apps;
}
