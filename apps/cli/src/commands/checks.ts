import { Command } from 'commander';
import { printJson, printTable } from '../output.js';
import { appContext, withApp, withJson } from './shared.js';

/** `fleet checks list`: every machine's health checks, as flyctl's `checks list`. */
export function checksCommand(): Command {
  const checks = new Command('checks').description("an app's health checks");
  withJson(
    withApp(checks.command('list').description("list the health checks of the app's machines")),
  ).action(async (_options: unknown, command: Command) => {
    const { flags, app, flaps } = appContext(command);
    const rows = (await flaps.listMachines(app)).flatMap((machine) =>
      (machine.checks ?? []).map((check) => ({ machine: machine.id, ...check })),
    );
    if (flags.json) return printJson(rows);
    process.stdout.write(`Health Checks for ${app}\n`);
    printTable(
      ['NAME', 'STATUS', 'MACHINE', 'LAST UPDATED', 'OUTPUT'],
      rows.map((row) => [
        row.name,
        row.status,
        row.machine,
        row.updated_at ?? '',
        row.output ?? '',
      ]),
    );
  });
  return checks;
}
