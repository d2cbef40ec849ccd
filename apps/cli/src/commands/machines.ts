import type { FlapsClient } from '@fleet/flaps-client';
import { Command } from 'commander';
import { CliError, exitCodes } from '../errors.js';
import { printFields, printJson, printTable, say, stateColour } from '../output.js';
import { appContext, machineHead, machineRow, wholeNumber, withApp, withJson } from './shared.js';

/**
 * `fleet machines list|status|start|stop|restart|suspend|kill|cordon|uncordon|destroy|clone|update|
 * exec` (alias `fleet machine`).
 */
export function machinesCommand(): Command {
  const machines = new Command('machines').alias('machine').description("manage an app's machines");

  withJson(withApp(machines.command('list').alias('ls').description("list the app's machines")))
    .option('-q, --quiet', "only the machines' ids, one a line")
    .action(async (options: { quiet?: boolean }, command: Command) => {
      const { flags, app, flaps } = appContext(command);
      const list = await flaps.listMachines(app);
      if (flags.json) return printJson(list);
      if (options.quiet)
        return void process.stdout.write(list.map((one) => `${one.id}\n`).join(''));
      printTable(machineHead, list.map(machineRow));
    });

  withJson(
    withApp(
      machines.command('status').argument('<id>', 'the machine').description('show a machine'),
    ),
  ).action(async (id: string, _options: unknown, command: Command) => {
    const { flags, app, flaps } = appContext(command);
    const machine = await flaps.getMachine(app, id);
    if (flags.json) return printJson(machine);
    printFields([
      ['ID', machine.id],
      ['Name', machine.name],
      ['State', stateColour(machine.state)],
      ['Cordoned', machine.cordoned ? 'yes: the proxy sends it nothing' : 'no'],
      ['Region', machine.region],
      ['Version', machine.instance_id],
      ['Image', (machine.config as { image?: string }).image],
      ['Private address', machine.private_ip],
      ['Created', machine.created_at],
      ['Updated', machine.updated_at],
    ]);
    const checks = machine.checks ?? [];
    if (checks.length > 0) {
      process.stdout.write('\nChecks\n');
      printTable(
        ['NAME', 'STATUS', 'OUTPUT'],
        checks.map((check) => [check.name, check.status, check.output ?? '']),
      );
    }
    process.stdout.write('\nEvents\n');
    printTable(
      ['TIMESTAMP', 'TYPE', 'STATUS', 'SOURCE'],
      (machine.events ?? []).map((event) => [
        new Date(event.timestamp).toISOString(),
        event.type,
        event.status,
        event.source,
      ]),
    );
  });

  // Each verb on every machine named, one after the other: the call, then (when the verb moves
  // the machine to a state) a wait until it is there.
  const verbs: {
    verb: string;
    description: string;
    call: (flaps: FlapsClient, app: string, id: string) => Promise<void>;
    reached: string;
    waits: boolean;
  }[] = [
    {
      verb: 'start',
      description: 'start stopped machines',
      call: (flaps, app, id) => flaps.startMachine(app, id),
      reached: 'started',
      waits: true,
    },
    {
      verb: 'stop',
      description: 'stop machines',
      call: (flaps, app, id) => flaps.stopMachine(app, id),
      reached: 'stopped',
      waits: true,
    },
    {
      verb: 'restart',
      description: 'restart machines',
      call: (flaps, app, id) => flaps.restartMachine(app, id),
      reached: 'started',
      waits: true,
    },
    {
      verb: 'suspend',
      description: 'suspend machines (their memory kept, resumed by start)',
      call: (flaps, app, id) => flaps.suspendMachine(app, id),
      reached: 'suspended',
      waits: true,
    },
    {
      verb: 'cordon',
      description: 'take machines out of routing: they run, the proxy sends them nothing',
      call: (flaps, app, id) => flaps.cordonMachine(app, id, 'cordon'),
      reached: 'cordoned',
      waits: false,
    },
    {
      verb: 'uncordon',
      description: 'route to cordoned machines again',
      call: (flaps, app, id) => flaps.cordonMachine(app, id, 'uncordon'),
      reached: 'uncordoned',
      waits: false,
    },
  ];
  for (const { verb, description, call, reached, waits } of verbs)
    withApp(
      machines.command(verb).argument('<ids...>', 'the machines').description(description),
    ).action(async (ids: string[], _options: unknown, command: Command) => {
      const { app, flaps } = appContext(command);
      for (const id of ids) {
        await call(flaps, app, id);
        if (waits) await flaps.waitMachine(app, id, reached, 60);
        say(`${id} ${reached}`);
      }
    });

  // As flyctl's `machine kill`: SIGKILL, the machine then ends as its restart policy says.
  withApp(
    machines
      .command('kill')
      .argument('<id>', 'the machine')
      .description('kill (SIGKILL) a machine'),
  ).action(async (id: string, _options: unknown, command: Command) => {
    const { app, flaps } = appContext(command);
    await flaps.signalMachine(app, id, 'SIGKILL');
    say(`${id} killed`);
  });

  withApp(
    machines
      .command('destroy')
      .alias('rm')
      .argument('<ids...>', 'the machines')
      .option('-f, --force', 'kill a running machine')
      .description('destroy machines'),
  ).action(async (ids: string[], options: { force?: boolean }, command: Command) => {
    const { app, flaps } = appContext(command);
    for (const id of ids) {
      await flaps.destroyMachine(app, id, options.force === true);
      say(`${id} destroyed`);
    }
  });

  withJson(
    withApp(
      machines
        .command('clone')
        .argument('<id>', 'the machine to copy')
        .option('-r, --region <code>', 'where (default: the same region)')
        .description('create a machine with the same config as another, and wait until it starts'),
    ),
  ).action(async (id: string, options: { region?: string }, command: Command) => {
    const { flags, app, flaps } = appContext(command);
    const source = await flaps.getMachine(app, id);
    const clone = await flaps.createMachine(app, {
      region: options.region ?? source.region,
      config: source.config,
    });
    await flaps.waitMachine(app, clone.id, 'started', 60);
    if (flags.json) return printJson(await flaps.getMachine(app, clone.id));
    say(`cloned ${id} as ${clone.id} in ${clone.region}, started`);
  });

  withJson(
    withApp(
      machines
        .command('update')
        .argument('<id>', 'the machine')
        .option('-i, --image <image>', 'the image to run')
        .option('-e, --env <pair...>', 'NAME=VALUE to set in its environment (repeatable)')
        .option('--vm-memory <mb>', 'memory in megabytes')
        .option('--vm-cpus <n>', 'CPUs')
        .description("change a machine's config, as flyctl's machine update: it restarts with it"),
    ),
  ).action(async (id: string, options: UpdateOptions, command: Command) => {
    const { flags, app, flaps } = appContext(command);
    const machine = await flaps.getMachine(app, id);
    const config = updatedConfig(machine.config, options);
    if (config === undefined)
      throw new CliError(
        'nothing to change: give --image, --env, --vm-memory or --vm-cpus',
        exitCodes.usage,
      );
    await flaps.updateMachine(app, id, { config });
    if (machine.state === 'started') await flaps.waitMachine(app, id, 'started', 60);
    const updated = await flaps.getMachine(app, id);
    if (flags.json) return printJson(updated);
    say(`${id} updated to version ${updated.instance_id} (${updated.state})`);
  });

  withJson(
    withApp(
      machines
        .command('exec')
        .argument('<id>', 'the machine')
        .argument(
          '<command...>',
          "the command and its arguments (after --), or one quoted command line, as flyctl's",
        )
        .option('--timeout <seconds>', 'kill the command after this long', '30')
        .description("run a command in a machine; exits with the command's exit code"),
    ),
  ).action(async (id: string, argv: string[], options: { timeout: string }, command: Command) => {
    const { flags, app, flaps } = appContext(command);
    const timeout = Number(options.timeout);
    if (!Number.isFinite(timeout) || timeout <= 0 || timeout > 600)
      throw new CliError('--timeout is seconds, more than 0 and at most 600', exitCodes.usage);
    // flyctl takes one command line (`fly machine exec ID "ls -l /"`), which the machine's shell
    // splits; several words are the command and its arguments as they are.
    const [line] = argv;
    const result = await flaps.execMachine(
      app,
      id,
      argv.length === 1 && line !== undefined ? line : argv,
      timeout,
    );
    if (flags.json) return printJson(result);
    process.stdout.write(result.stdout);
    process.stderr.write(result.stderr);
    if (result.truncated) say('(output cut at 1 MiB)');
    process.exitCode = result.exit_code === 0 ? 0 : result.exit_code || exitCodes.failed;
  });
  return machines;
}

interface UpdateOptions {
  image?: string;
  env?: string[];
  vmMemory?: string;
  vmCpus?: string;
}

/** `config` with what the flags change, or undefined when they change nothing. */
function updatedConfig(
  config: Record<string, unknown>,
  options: UpdateOptions,
): Record<string, unknown> | undefined {
  const next: Record<string, unknown> = { ...config };
  if (options.image !== undefined) next.image = options.image;
  if (options.env !== undefined)
    next.env = { ...(config.env as Record<string, string> | undefined), ...envPairs(options.env) };
  if (options.vmMemory !== undefined || options.vmCpus !== undefined) {
    const guest = { ...(config.guest as Record<string, unknown> | undefined) };
    if (options.vmMemory !== undefined)
      guest.memory_mb = wholeNumber(options.vmMemory, '--vm-memory');
    if (options.vmCpus !== undefined) guest.cpus = wholeNumber(options.vmCpus, '--vm-cpus');
    next.guest = guest;
  }
  const changed = [options.image, options.env, options.vmMemory, options.vmCpus];
  return changed.every((flag) => flag === undefined) ? undefined : next;
}

function envPairs(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new CliError(`--env ${pair} is not NAME=VALUE`, exitCodes.usage);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return env;
}
