import { Command } from 'commander';
import { CliError } from '../errors.js';
import { printFields, printJson, printTable } from '../output.js';
import { appContext, machineHead, machineRow, withApp, withJson } from './shared.js';

/** `fleet status`: the app and its machines. */
export function statusCommand(): Command {
  return withJson(
    withApp(new Command('status').description('show the app and its machines')),
  ).action(async (_options: unknown, command: Command) => {
    const { flags, app, flaps } = appContext(command);
    const found = await flaps.getApp(app);
    if (!found)
      throw new CliError(`app ${app} not found: create it with \`fleet apps create ${app}\``);
    const machines = await flaps.listMachines(app);
    if (flags.json) return printJson({ app: found, machines });
    printFields([
      ['App', found.name],
      ['Owner', found.organization.slug],
      ['Status', found.status],
      ['Machines', machines.length],
    ]);
    process.stdout.write('\n');
    printTable(machineHead, machines.map(machineRow));
  });
}
