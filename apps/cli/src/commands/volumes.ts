import { Command } from 'commander';
import { CliError, exitCodes } from '../errors.js';
import { printJson, printTable, say } from '../output.js';
import { appContext, withApp, withJson } from './shared.js';

function sizeGb(text: string): number {
  const size = Number(text);
  if (!Number.isInteger(size) || size < 1 || size > 500)
    throw new CliError(`--size is whole gigabytes from 1 to 500, not ${text}`, exitCodes.usage);
  return size;
}

/** `fleet volumes list|create|destroy|extend|snapshots` (alias `volume`). */
export function volumesCommand(): Command {
  const volumes = new Command('volumes').alias('volume').description("manage an app's volumes");

  withJson(
    withApp(volumes.command('list').alias('ls').description("list the app's volumes")),
  ).action(async (_options: unknown, command: Command) => {
    const { flags, app, flaps } = appContext(command);
    const list = await flaps.listVolumes(app);
    if (flags.json) return printJson(list);
    printTable(
      ['ID', 'NAME', 'STATE', 'SIZE', 'REGION', 'ATTACHED TO', 'CREATED'],
      list.map((volume) => [
        volume.id,
        volume.name,
        volume.state,
        `${volume.size_gb}GB`,
        volume.region,
        volume.attached_machine_id ?? '',
        volume.created_at,
      ]),
    );
  });

  withJson(
    withApp(
      volumes
        .command('create')
        .argument('<name>', 'the volume name (machines mount volumes by name)')
        .option('-r, --region <code>', 'where (default: placement chooses)')
        .option('-s, --size <gb>', 'size in gigabytes', '1')
        .option('--snapshot-id <id>', "restore this snapshot's data into the new volume")
        .description('create a volume'),
    ),
  ).action(async (name: string, options: CreateOptions, command: Command) => {
    const { flags, app, flaps } = appContext(command);
    const volume = await flaps.createVolume(app, {
      name,
      size_gb: sizeGb(options.size),
      ...(options.region === undefined ? {} : { region: options.region }),
      ...(options.snapshotId === undefined ? {} : { snapshot_id: options.snapshotId }),
    });
    if (flags.json) return printJson(volume);
    say(`created volume ${volume.id} (${volume.name}, ${volume.size_gb}GB) in ${volume.region}`);
  });

  withApp(
    volumes
      .command('destroy')
      .argument('<id>', 'the volume')
      .option('-y, --yes', 'do it: its data is gone for good')
      .description('destroy a volume'),
  ).action(async (id: string, options: { yes?: boolean }, command: Command) => {
    if (!options.yes)
      throw new CliError(
        `destroying ${id} deletes its data: run again with --yes`,
        exitCodes.usage,
      );
    const { app, flaps } = appContext(command);
    await flaps.destroyVolume(app, id);
    say(`destroyed volume ${id}`);
  });

  withJson(
    withApp(
      volumes
        .command('extend')
        .argument('<id>', 'the volume')
        .requiredOption('-s, --size <gb>', 'the new size in gigabytes (larger than today)')
        .description('grow a volume'),
    ),
  ).action(async (id: string, options: { size: string }, command: Command) => {
    const { flags, app, flaps } = appContext(command);
    const extension = await flaps.extendVolume(app, id, sizeGb(options.size));
    if (flags.json) return printJson(extension);
    const { volume } = extension;
    say(`volume ${volume.id} is now ${volume.size_gb}GB`);
    // Its worker could not grow the mounted filesystem under the running machine (as flyctl says).
    if (extension.needs_restart && volume.attached_machine_id)
      say(
        `machine ${volume.attached_machine_id} sees the new size from its next start: fleet machines restart ${volume.attached_machine_id}`,
      );
  });
  volumes.addCommand(snapshotsCommand());
  return volumes;
}

interface CreateOptions {
  region?: string;
  size: string;
  snapshotId?: string;
}

/** `fleet volumes snapshots list|create VOLUME`, as flyctl's. */
function snapshotsCommand(): Command {
  const snapshots = new Command('snapshots')
    .alias('snapshot')
    .description(
      "a volume's snapshots: list them, take one (restore with volumes create --snapshot-id)",
    );
  withJson(
    withApp(
      snapshots
        .command('list')
        .alias('ls')
        .argument('<volume>', 'the volume id')
        .description("list the volume's snapshots"),
    ),
  ).action(async (volumeId: string, _options: unknown, command: Command) => {
    const { flags, app, flaps } = appContext(command);
    const list = await flaps.listSnapshots(app, volumeId);
    if (flags.json) return printJson(list);
    printTable(
      ['ID', 'STATUS', 'SIZE', 'CREATED AT', 'RETENTION DAYS'],
      list.map((one) => [
        one.id,
        one.status,
        `${one.size} B`,
        one.created_at,
        String(one.retention_days ?? '-'),
      ]),
    );
  });
  withJson(
    withApp(
      snapshots
        .command('create')
        .argument('<volume>', 'the volume id')
        .description('take a snapshot of the volume now'),
    ),
  ).action(async (volumeId: string, _options: unknown, command: Command) => {
    const { flags, app, flaps } = appContext(command);
    const snapshot = await flaps.createSnapshot(app, volumeId);
    if (flags.json) return printJson(snapshot);
    say(`created snapshot ${snapshot.id} of volume ${volumeId} (${snapshot.size} bytes)`);
  });
  return snapshots;
}
