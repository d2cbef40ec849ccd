import { join } from 'node:path';
import { durationMs } from '@fleet/machine-config/fly-values';
import { Command } from 'commander';
import { buildImage } from '../deploy/build.js';
import { deploy } from '../deploy/deploy.js';
import { releaseOf } from '../deploy/release.js';
import { CliError, exitCodes } from '../errors.js';
import { machineConfigOf } from '../fly-toml/machine-config.js';
import { mountOf } from '../fly-toml/mounts.js';
import { readFlyToml } from '../fly-toml/read.js';
import type { DeployStrategy } from '../fly-toml/types.js';
import { say } from '../output.js';
import { type ConnectionFlags, client } from '../settings.js';
import { flagsOf } from './shared.js';

interface DeployOptions {
  config?: string;
  app?: string;
  image?: string;
  strategy?: DeployStrategy;
  maxUnavailable?: string;
  waitTimeout?: string;
  ha: boolean;
}

const strategies = ['rolling', 'immediate', 'canary', 'bluegreen'];

/** `fleet deploy`: the fly.toml's release onto the app's machines, by strategy. */
export function deployCommand(): Command {
  return new Command('deploy')
    .description("deploy the app of ./fly.toml: a new release on its machines, by Fly's strategies")
    .option('-c, --config <file>', 'the fly.toml', 'fly.toml')
    .option('-a, --app <name>', "the app (default: the fly.toml's)")
    .option(
      '-i, --image <image>',
      'the image to run (default: [build] image, else the [build] dir folder is built)',
    )
    .option(
      '--strategy <name>',
      `${strategies.join(', ')} (default: [deploy] strategy, else rolling)`,
    )
    .option(
      '--max-unavailable <n>',
      'machines updated at once by rolling: a count, or a share below 1 (default 0.33)',
    )
    .option(
      '--wait-timeout <duration>',
      'bound on each machine to be healthy (default: [deploy] wait_timeout, else 5m)',
    )
    .option('--no-ha', 'a first deploy creates one machine, not two')
    .action(async (options: DeployOptions, command: Command) =>
      runDeploy(options, flagsOf(command)),
    );
}

export async function runDeploy(options: DeployOptions, flags: ConnectionFlags): Promise<void> {
  const file = options.config ?? join(process.cwd(), 'fly.toml');
  const { config, warnings } = readFlyToml(file);
  for (const warning of warnings) say(`warning: ${warning}`);
  const app = options.app ?? config.app;
  const strategy = options.strategy ?? config.deploy?.strategy ?? 'rolling';
  if (!strategies.includes(strategy))
    throw new CliError(`--strategy must be one of ${strategies.join(', ')}`, exitCodes.usage);
  const maxUnavailable = Number(options.maxUnavailable ?? config.deploy?.max_unavailable ?? 0.33);
  if (!(maxUnavailable > 0))
    throw new CliError('--max-unavailable must be above 0', exitCodes.usage);
  const wait = options.waitTimeout ?? config.deploy?.wait_timeout ?? '5m';
  const waitTimeoutMs = durationMs(wait);
  if (waitTimeoutMs === undefined)
    throw new CliError(
      `--wait-timeout must be a duration like 90s or 5m, not ${wait}`,
      exitCodes.usage,
    );
  const mount = mountOf(config);
  // As flyctl: a volume belongs to one machine, so no strategy that runs two machines per volume.
  if (mount && (strategy === 'canary' || strategy === 'bluegreen'))
    throw new CliError(
      `the ${strategy} strategy needs a second machine per volume: with [mounts], deploy rolling or immediate`,
      exitCodes.usage,
    );
  const flaps = client(flags);
  if (!(await flaps.getApp(app)))
    throw new CliError(
      `app ${app} not found: create it with \`fleet launch\` or \`fleet apps create ${app}\``,
    );
  // An image named (`--image`, `[build] image`) runs as it is; otherwise the folder is built.
  const image =
    options.image ??
    config.build?.image ??
    (await buildImage(flaps, app, file, config.build?.dir, say));
  const release = releaseOf(machineConfigOf(config, image), mount);
  const services = (release.config.services as unknown[] | undefined) ?? [];
  await deploy(
    flaps,
    {
      app,
      release,
      strategy: strategy as DeployStrategy,
      maxUnavailable,
      waitTimeoutMs,
      initialCount: options.ha && services.length > 0 ? 2 : 1,
      region: config.primary_region,
      releaseCommand: config.deploy?.release_command,
      mount,
    },
    say,
  );
  say(`deployed release ${release.id} of ${app}`);
}
