import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { manifestFile } from '@fleet/images';
import { Command } from 'commander';
import { CliError, exitCodes } from '../errors.js';
import { checkFlyToml } from '../fly-toml/read.js';
import { scanFolder } from '../launch-scan.js';
import { say } from '../output.js';
import { client } from '../settings.js';
import { runDeploy } from './deploy.js';
import { flagsOf } from './shared.js';

interface LaunchOptions {
  name?: string;
  org: string;
  image?: string;
  region?: string;
  internalPort: string;
  deploy: boolean;
  copyConfig?: boolean;
}

/**
 * The fly.toml `fleet launch` writes: an HTTP service on 80/443 to the internal port, running
 * the image named, else the folder itself (packed at each deploy; its image.json names the
 * command, as a Dockerfile does for flyctl).
 */
function flyToml(options: { app: string; image?: string; region?: string; port: number }): string {
  const build = options.image
    ? `  image = '${options.image}'`
    : `  dir = '.' # this folder is the image: ${manifestFile} names its command`;
  return `# fly.toml written by \`fleet launch\`; see fly.io/docs/reference/configuration
app = '${options.app}'
${options.region ? `primary_region = '${options.region}'\n` : ''}
[build]
${build}

[http_service]
  internal_port = ${options.port}
  force_https = false
  auto_stop_machines = 'stop'
  auto_start_machines = true
  min_machines_running = 0

[[vm]]
  size = 'shared-cpu-1x'
  memory = '256mb'
`;
}

/** `fleet launch`: writes ./fly.toml, creates the app, and deploys it (unless --no-deploy). */
export function launchCommand(): Command {
  return new Command('launch')
    .description('create an app from this directory: write fly.toml, create the app, deploy it')
    .option('--name <app>', 'the app name (default: the directory name)')
    .option('-o, --org <slug>', 'the organization', 'personal')
    .option(
      '-i, --image <image>',
      `a prebuilt image to run (hello is the demo's); without it this folder is built (its ${manifestFile} names the command)`,
    )
    .option('-r, --region <code>', 'the primary region')
    .option('--internal-port <port>', 'the port the app listens on', '8080')
    .option('--no-deploy', 'write fly.toml and create the app only')
    .option(
      '--copy-config',
      "launch a new app from this directory's fly.toml (its app renamed by --name) instead of writing one",
    )
    .action(async (options: LaunchOptions, command: Command) => {
      const flags = flagsOf(command);
      const file = join(process.cwd(), 'fly.toml');
      const existing = existsSync(file);
      if (existing && !options.copyConfig)
        throw new CliError(
          `${file} exists: deploy it with \`fleet deploy\`, or launch a new app from it with \`fleet launch --copy-config [--name APP]\``,
          exitCodes.usage,
        );
      if (!existing && options.copyConfig)
        throw new CliError(`--copy-config: ${file} does not exist`, exitCodes.usage);
      const text = existing ? copiedFlyToml(file, options.name) : newFlyToml(options);
      // Read before anything is made: a folder that cannot run is refused here.
      const scanned =
        existing || options.image !== undefined ? undefined : scanFolder(process.cwd());
      // A bad --name or a bad file is said here, before anything is made.
      const { app } = checkFlyToml(text, file).config;
      await client(flags).createApp(app, options.org);
      writeFileSync(file, text);
      say(`created app ${app}, ${existing ? 'its config from' : 'wrote'} ${file}`);
      if (scanned !== undefined) {
        const manifest = join(process.cwd(), manifestFile);
        writeFileSync(manifest, scanned.text);
        say(`found ${scanned.found}: wrote ${manifest}, the command its image runs`);
        if (scanned.warning !== undefined) say(`warning: ${scanned.warning}`);
      }
      if (options.deploy) await runDeploy({ config: file, ha: true }, flags);
    });
}

function newFlyToml(options: LaunchOptions): string {
  const port = Number(options.internalPort);
  if (!Number.isInteger(port) || port < 1 || port > 65_535)
    throw new CliError('--internal-port must be a port number', exitCodes.usage);
  const app = (options.name ?? basename(process.cwd())).toLowerCase();
  return flyToml({ app, image: options.image, region: options.region, port });
}

/** The fly.toml at `file`, as it is or with its top-level `app` set to `name` (added if none). */
function copiedFlyToml(file: string, name: string | undefined): string {
  const source = readFileSync(file, 'utf8');
  if (name === undefined) return source;
  const line = `app = ${JSON.stringify(name.toLowerCase())}`;
  const appLine = /^app\s*=.*$/m;
  // Only a line before the first table is the top-level key.
  const table = source.search(/^\s*\[/m);
  const found = appLine.exec(source);
  if (found !== null && (table < 0 || found.index < table)) {
    return `${source.slice(0, found.index)}${line}${source.slice(found.index + found[0].length)}`;
  }
  return `${line}\n${source}`;
}
