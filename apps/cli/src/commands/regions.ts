import { Command } from 'commander';
import { printJson, printTable } from '../output.js';
import { client } from '../settings.js';
import { flagsOf, withJson } from './shared.js';

/** `fleet regions list`: where machines can run. */
export function regionsCommand(): Command {
  const regions = new Command('regions').description('regions of the fleet');
  withJson(regions.command('list').description('list the regions and their workers')).action(
    async (_options: unknown, command: Command) => {
      const flags = flagsOf(command);
      const list = await client(flags).regions();
      if (flags.json) return printJson(list);
      printTable(
        ['CODE', 'NAME', 'WORKERS'],
        list.map((region) => [region.code, region.name, region.workers]),
      );
    },
  );
  return regions;
}
