import type { FlapsClient, Machine } from '@fleet/flaps-client';
import { guestOf } from '@fleet/machine-config';
import { Command } from 'commander';
import { processGroupOf } from '../deploy/release.js';
import { createWithVolume, mountedVolume } from '../deploy/volumes.js';
import { CliError, exitCodes } from '../errors.js';
import { printJson, printTable, say } from '../output.js';
import { appContext, wholeNumber, withApp, withJson } from './shared.js';

/** One line of `scale show`: the machines of a process group that have one size. */
interface SizeGroup {
  process_group: string;
  count: number;
  cpu_kind: string;
  cpus: number;
  memory_mb: number;
  /** Machines per region, as Fly's `ams(2)`. */
  regions: Record<string, number>;
}

/** Fly's `scale show`: the app's machines (not destroyed) by process group and size. */
function sizeGroups(machines: Machine[]): SizeGroup[] {
  const groups = new Map<string, SizeGroup>();
  for (const machine of machines) {
    if (machine.state === 'destroyed') continue;
    const guest = guestOf(machine.config);
    const processGroup = processGroupOf(machine) ?? 'app';
    const key = [processGroup, guest.cpuKind, guest.cpus, guest.memoryMb].join(' ');
    const group = groups.get(key) ?? {
      process_group: processGroup,
      count: 0,
      cpu_kind: guest.cpuKind,
      cpus: guest.cpus,
      memory_mb: guest.memoryMb,
      regions: {},
    };
    group.count += 1;
    group.regions[machine.region] = (group.regions[machine.region] ?? 0) + 1;
    groups.set(key, group);
  }
  return [...groups.values()].sort((a, b) => a.process_group.localeCompare(b.process_group));
}

/** Machines `scale count` may remove first: the ones doing least, then the newest. */
function removalOrder(machines: Machine[]): Machine[] {
  const rank = (machine: Machine) => (machine.state === 'started' ? 1 : 0);
  return [...machines].sort(
    (a, b) => rank(a) - rank(b) || b.created_at.localeCompare(a.created_at),
  );
}

/**
 * Adds machines cloned from the newest one's config (in `region`, else its region; each on a new
 * volume of its own when the model mounts one) or removes the excess, until the app (or the region) has `count`; each new machine is waited for.
 */
async function scaleCount(
  flaps: FlapsClient,
  app: string,
  count: number,
  region: string | undefined,
): Promise<void> {
  const all = (await flaps.listMachines(app)).filter((machine) => machine.state !== 'destroyed');
  const current = region === undefined ? all : all.filter((machine) => machine.region === region);
  if (current.length === count) {
    say(
      `${app} already has ${count} machine${count === 1 ? '' : 's'}${region ? ` in ${region}` : ''}`,
    );
    return;
  }
  if (current.length > count) {
    for (const machine of removalOrder(current).slice(0, current.length - count)) {
      await flaps.destroyMachine(app, machine.id, true);
      say(`destroyed ${machine.id} (${machine.region})`);
    }
    return;
  }
  const template = [...all].sort((a, b) => b.created_at.localeCompare(a.created_at))[0];
  if (!template)
    throw new CliError(
      `${app} has no machine to copy: deploy it first (\`fleet deploy\`) or create one`,
    );
  const mounted = mountedVolume(template.config);
  // With a volume (fly.toml's [mounts]), each new machine gets its own, as big as the model's.
  const sizeGb = mounted
    ? ((await flaps.listVolumes(app)).find((volume) => volume.id === mounted.volume)?.size_gb ?? 1)
    : 0;
  for (let made = current.length; made < count; made++) {
    const machine = mounted
      ? await createWithVolume(
          flaps,
          app,
          { name: mounted.name ?? 'data', path: mounted.path, sizeGb },
          region ?? template.region,
          template.config,
        )
      : await flaps.createMachine(app, {
          region: region ?? template.region,
          config: template.config,
        });
    await flaps.waitMachine(app, machine.id, 'started', 60);
    say(`created ${machine.id} in ${machine.region}, started`);
  }
}

/** Fly's sizes: `shared-cpu-2x` is 2 shared CPUs, `performance-4x` 4 dedicated ones. */
function guestOfSize(size: string, memoryMb: number | undefined) {
  const match = /^(shared-cpu|performance)-([0-9]+)x$/.exec(size);
  if (!match)
    throw new CliError(
      `${size} is not a size like shared-cpu-1x, shared-cpu-4x or performance-2x`,
      exitCodes.usage,
    );
  const cpuKind = match[1] === 'performance' ? 'performance' : 'shared';
  const cpus = Number(match[2]);
  return {
    cpu_kind: cpuKind,
    cpus,
    memory_mb: memoryMb ?? (cpuKind === 'performance' ? 2_048 : 256) * cpus,
  };
}

type Guest = { cpu_kind: string; cpus: number; memory_mb: number };

/**
 * Gives every machine of the app (not destroyed) the guest `guestFor` answers, one at a time, a
 * started one waited for until it is started again. The Machines API checks each size.
 */
async function resizeEvery(command: Command, guestFor: (machine: Machine) => Guest, said: string) {
  const { app, flaps } = appContext(command);
  const machines = (await flaps.listMachines(app)).filter(
    (machine) => machine.state !== 'destroyed',
  );
  // A silent success would read as "resized": say there was nothing to resize.
  if (machines.length === 0)
    throw new CliError(`${app} has no machines to resize: deploy it first (\`fleet deploy\`)`);
  for (const machine of machines) {
    const guest = guestFor(machine);
    await flaps.updateMachine(app, machine.id, { config: { ...machine.config, guest } });
    if (machine.state === 'started') await flaps.waitMachine(app, machine.id, 'started', 60);
    say(`${machine.id} is ${said}: ${guest.cpu_kind} ${guest.cpus} CPU(s), ${guest.memory_mb} MB`);
  }
}

/** `fleet scale count N`, `fleet scale vm SIZE`, `fleet scale memory MB` and `fleet scale show`. */
export function scaleCommand(): Command {
  const scale = new Command('scale').description("change the number of an app's machines");
  withApp(
    scale
      .command('count')
      .argument('<count>', 'how many machines the app (or the region) should have')
      .option('-r, --region <code>', 'count and place in this region only')
      .description('add or remove machines until the app has <count>'),
  ).action(async (countText: string, options: { region?: string }, command: Command) => {
    const count = Number(countText);
    if (!Number.isInteger(count) || count < 0 || count > 1000)
      throw new CliError(
        `count must be a whole number from 0 to 1000, not ${countText}`,
        exitCodes.usage,
      );
    const { app, flaps } = appContext(command);
    await scaleCount(flaps, app, count, options.region);
  });
  withApp(
    scale
      .command('vm')
      .argument('<size>', 'shared-cpu-1x … shared-cpu-8x, performance-1x … performance-16x')
      .option('--memory <mb>', "memory in megabytes (default: the size's least)")
      .description('give every machine of the app this size, one machine at a time'),
  ).action(async (size: string, options: { memory?: string }, command: Command) => {
    const memory =
      options.memory === undefined
        ? undefined
        : wholeNumber(options.memory, '--memory (megabytes)');
    const guest = guestOfSize(size, memory);
    await resizeEvery(command, () => guest, size);
  });
  withApp(
    scale
      .command('memory')
      .argument('<mb>', 'memory in megabytes')
      .description(
        "give every machine of the app this much memory, keeping its CPUs (flyctl's scale memory)",
      ),
  ).action(async (mb: string, _options: unknown, command: Command) => {
    const memory = wholeNumber(mb, 'memory (megabytes)');
    await resizeEvery(
      command,
      (machine) => {
        const { cpuKind, cpus } = guestOf(machine.config);
        return { cpu_kind: cpuKind, cpus, memory_mb: memory };
      },
      'resized',
    );
  });
  withJson(
    withApp(
      scale
        .command('show')
        .description("show the app's machines by process group and size, and where they run"),
    ),
  ).action(async (_options: unknown, command: Command) => {
    const { flags, app, flaps } = appContext(command);
    const groups = sizeGroups(await flaps.listMachines(app));
    if (flags.json) return printJson(groups);
    process.stdout.write(`VM Resources for app: ${app}\n\n`);
    printTable(
      ['NAME', 'COUNT', 'KIND', 'CPUS', 'MEMORY', 'REGIONS'],
      groups.map((group) => [
        group.process_group,
        group.count,
        group.cpu_kind,
        group.cpus,
        `${group.memory_mb} MB`,
        Object.entries(group.regions)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([region, count]) => `${region}(${count})`)
          .join(','),
      ]),
    );
  });
  return scale;
}
