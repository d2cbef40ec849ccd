import type { FlapsClient } from '@fleet/flaps-client';
import { Command } from 'commander';
import { CliError, exitCodes } from '../errors.js';
import { printJson, printTable, say } from '../output.js';
import { machineLine } from '../progress.js';
import { checkSecretName, parseSecretLines, parseSecretPairs } from '../secret-pairs.js';
import { appContext, withApp, withJson } from './shared.js';

/** Bound on each machine's restart after a change of secrets. */
const restartWaitSeconds = 60;

/**
 * Restarts the app's started machines one at a time, each waited for until started again, so
 * they pick up the secrets (flyd opens them at start) while the others keep serving. Stopped
 * machines get them at their next start.
 */
async function restartStarted(flaps: FlapsClient, app: string): Promise<void> {
  const started = (await flaps.listMachines(app)).filter((machine) => machine.state === 'started');
  if (started.length === 0) {
    say('no started machine to restart: machines get the secrets at their next start');
    return;
  }
  for (const [index, machine] of started.entries()) {
    const name = `  ${machine.id} (${machine.region})`;
    await machineLine(
      name,
      async (status) => {
        status('restarting');
        await flaps.restartMachine(app, machine.id);
        await flaps.waitMachine(app, machine.id, 'started', restartWaitSeconds);
      },
      () => `${name} started with the new secrets [${index + 1}/${started.length}]`,
    );
  }
}

const stageFlag = [
  '--stage',
  "store the change without restarting the app's machines (they get it at their next start)",
] as const;

/** Sets `values` on the command's app, then restarts its started machines unless `stage`. */
async function setSecrets(
  values: Record<string, string>,
  options: { stage?: boolean },
  command: Command,
): Promise<void> {
  const { app, flaps } = appContext(command);
  await flaps.updateSecrets(app, values);
  say(`set ${Object.keys(values).join(', ')} on ${app}`);
  if (!options.stage) await restartStarted(flaps, app);
}

/** `fleet secrets set|import|list|unset`: sealed at rest, as env on each machine's next start. */
export function secretsCommand(): Command {
  const secrets = new Command('secrets').description(
    "manage an app's secrets: environment variables kept sealed, never shown again",
  );

  withJson(
    withApp(secrets.command('list').alias('ls').description("list the app's secrets")),
  ).action(async (_options: unknown, command: Command) => {
    const { flags, app, flaps } = appContext(command);
    const list = await flaps.listSecrets(app);
    if (flags.json) return printJson(list);
    printTable(
      ['NAME', 'DIGEST', 'CREATED AT'],
      list.map((secret) => [secret.name, secret.digest, secret.created_at]),
    );
  });

  withApp(
    secrets
      .command('set')
      .argument('<pairs...>', 'NAME=VALUE, one or more')
      .option(...stageFlag)
      .description("set secrets, then restart the app's machines one at a time (unless --stage)"),
  ).action((pairs: string[], options: { stage?: boolean }, command: Command) =>
    setSecrets(parseSecretPairs(pairs), options, command),
  );

  withApp(
    secrets
      .command('import')
      .option(...stageFlag)
      .description(
        'set the secrets of NAME=VALUE lines on stdin (e.g. < .env): no value in the shell history',
      ),
  ).action(async (options: { stage?: boolean }, command: Command) => {
    if (process.stdin.isTTY)
      throw new CliError(
        'secrets import reads NAME=VALUE lines on stdin: fleet secrets import < .env',
        exitCodes.usage,
      );
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    await setSecrets(parseSecretLines(Buffer.concat(chunks).toString('utf8')), options, command);
  });

  withApp(
    secrets
      .command('unset')
      .argument('<names...>', 'the secrets to remove')
      .option(...stageFlag)
      .description(
        "remove secrets, then restart the app's machines one at a time (unless --stage)",
      ),
  ).action(async (names: string[], options: { stage?: boolean }, command: Command) => {
    for (const name of names) checkSecretName(name);
    const { app, flaps } = appContext(command);
    const known = new Set((await flaps.listSecrets(app)).map((secret) => secret.name));
    const unknown = names.filter((name) => !known.has(name));
    if (unknown.length > 0)
      throw new CliError(
        `app ${app} has no secret ${unknown.join(', ')} (see \`fleet secrets list\`)`,
      );
    await flaps.updateSecrets(app, Object.fromEntries(names.map((name) => [name, null])));
    say(`unset ${names.join(', ')} on ${app}`);
    if (!options.stage) await restartStarted(flaps, app);
  });
  return secrets;
}
