import { resolve } from 'node:path';
import { Command } from 'commander';
import { readFlyToml } from '../fly-toml/read.js';
import { say } from '../output.js';

/** `fleet config validate`: flyctl's check of a fly.toml, before a deploy finds what is wrong. */
export function configCommand(): Command {
  const config = new Command('config').description("check the app's fly.toml");
  config
    .command('validate')
    .option('-c, --config <file>', 'the fly.toml', 'fly.toml')
    .description('check ./fly.toml as a deploy reads it: every problem with its line (exit 2)')
    .action((options: { config: string }) => {
      const file = resolve(options.config);
      const { config: read, warnings } = readFlyToml(file);
      for (const warning of warnings) say(`warning: ${warning}`);
      process.stdout.write(`${file} is valid: app ${read.app}\n`);
    });
  return config;
}
