#!/usr/bin/env node
import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { appsCommand } from './commands/apps.js';
import { authCommand } from './commands/auth.js';
import { certsCommand } from './commands/certs.js';
import { checksCommand } from './commands/checks.js';
import { configCommand } from './commands/config.js';
import { deployCommand } from './commands/deploy.js';
import { launchCommand } from './commands/launch.js';
import { logsCommand } from './commands/logs.js';
import { machinesCommand } from './commands/machines.js';
import { regionsCommand } from './commands/regions.js';
import { scaleCommand } from './commands/scale.js';
import { secretsCommand } from './commands/secrets.js';
import { statusCommand } from './commands/status.js';
import { volumesCommand } from './commands/volumes.js';
import { exitCodes, explain } from './errors.js';

// `npx fleet` runs its bin in the folder of the nearest workspace's package.json (here `infra/`
// for `infra/examples/hello-node`), not where it was typed; npm keeps that folder in INIT_CWD.
// Every path the user meant (fly.toml, the folder a deploy packs) is relative to it.
if (process.env.npm_command === 'exec' && process.env.INIT_CWD) process.chdir(process.env.INIT_CWD);

// As `fly version` prints it: the release, then the platform it runs on.
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };
const versionLine = `fleet v${version} ${process.platform}/${process.arch} node ${process.version}`;

const program = new Command('fleet')
  .description("Fleet's command line: ship and run apps on a fleet, as flyctl does on Fly")
  .version(versionLine, '-v, --version', 'print the version')
  .option(
    '--api-url <url>',
    "the Machines API (default: FLEET_API_URL, the settings, or npm start's)",
  )
  .option('-t, --access-token <token>', 'the API token (default: FLEET_API_TOKEN or the settings)')
  .showHelpAfterError();

for (const command of [
  launchCommand(),
  deployCommand(),
  appsCommand(),
  machinesCommand(),
  statusCommand(),
  logsCommand(),
  scaleCommand(),
  volumesCommand(),
  secretsCommand(),
  certsCommand(),
  checksCommand(),
  regionsCommand(),
  authCommand(),
  configCommand(),
  new Command('version').description('print the version').action(() => {
    process.stdout.write(`${versionLine}\n`);
  }),
])
  program.addCommand(command);

/** Parse problems throw (to exit with the usage code) instead of exiting, at every level. */
function throwOnParseErrors(command: Command): void {
  command.exitOverride().showHelpAfterError();
  for (const sub of command.commands) throwOnParseErrors(sub);
}
throwOnParseErrors(program);

try {
  await program.parseAsync();
} catch (error) {
  if (error instanceof CommanderError) {
    // Help and version are successes; any other parse problem is a usage error (already printed).
    process.exitCode = error.exitCode === 0 ? exitCodes.ok : exitCodes.usage;
  } else {
    const { message, exitCode } = explain(error);
    process.stderr.write(`Error: ${message}\n`);
    process.exitCode = exitCode;
  }
}
