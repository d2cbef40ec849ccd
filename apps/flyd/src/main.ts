#!/usr/bin/env node
import { mkdirSync } from 'node:fs';
import { cpus, hostname, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { CorrosionClient } from '@fleet/corrosion-client';
import { fleetKeyFileSetting, fleetKeyOfFlag } from '@fleet/fleet-key';
import { FlydClient } from '@fleet/flyd-client';
import {
  createLogger,
  httpLimits,
  httpLimitsSpec,
  listenHttp,
  lockState,
  nodeProjectAbove,
  onShutdown,
  parseConfig,
  parseListenAddress,
  readSecret,
  runMain,
  startMetrics,
  startTracing,
  UsageError,
} from '@fleet/service';
import { openDatabase } from './db.js';
import { FsmEngine } from './fsm/engine.js';
import { ImageCache } from './images/cache.js';
import { imageDigest } from './images/resolve.js';
import { LogFeed } from './logs/feed.js';
import { LogSink } from './logs/sink.js';
import { AppSecrets } from './machines/app-secrets.js';
import { HealthChecks } from './machines/health-checks.js';
import { LeaseStore } from './machines/lease-store.js';
import { MachineStore } from './machines/machine-store.js';
import { MachineService } from './machines/service.js';
import { observeInventory } from './metrics.js';
import { Publisher } from './publishing/publisher.js';
import { Cgroups } from './runtime/cgroups.js';
import { Disks } from './runtime/disks.js';
import { MachineNetwork } from './runtime/machine-network.js';
import { MachineUsers, shieldDataDir } from './runtime/machine-users.js';
import { ProcessRuntime } from './runtime/process-runtime.js';
import { createFlydServer } from './server.js';
import { VolumeService } from './volumes/service.js';
import { VolumeStore } from './volumes/volume-store.js';

/** How long shutdown waits for operations in flight before stopping the machines anyway. */
const closeWaitMs = 2_000;

const spec = {
  listen: {
    type: 'string',
    format: 'address',
    default: '127.0.0.1:4281',
    description: 'API listen address',
  },
  'data-dir': { type: 'string', required: true, description: 'flyd.db and the machines folders' },
  'roots-dir': {
    type: 'string',
    description:
      "where machines' root filesystems live (default: roots/ in --data-dir); each run starts afresh from its image, so nothing there outlives a machine. Keep it outside any Node project: Node code in a machine would see the package.json and node_modules above it",
  },
  'corrosion-url': {
    type: 'string',
    format: 'url',
    required: true,
    description: 'base URL of the local corrosion API',
  },
  'corrosion-token-file': {
    type: 'string',
    description: 'file holding the bearer token of the corrosion API; or set CORROSION_TOKEN',
  },
  'token-file': {
    type: 'string',
    description:
      'file holding the internal bearer token callers (flaps) present; or set FLYD_TOKEN (one is required)',
  },
  'host-id': {
    type: 'string',
    default: hostname(),
    description: 'this worker host id (the hosts row)',
  },
  region: { type: 'string', default: 'local', description: 'region of this worker' },
  'images-dir': {
    type: 'string',
    description:
      'local image store: <dir>/<image>/image.json; without it only images pulled from flaps by digest run',
  },
  'fleet-key-file': fleetKeyFileSetting(
    "opens the app's secrets (sealed in corrosion) when a machine starts; without it a machine whose app has secrets does not start",
  ),
  'flaps-url': {
    type: 'string',
    format: 'url',
    description:
      "flaps' base URL, where images named by digest (name@sha256:...) are pulled from (with the internal token); without it only local images run",
  },
  'image-cache-bytes-max': {
    type: 'number',
    default: 4 * 1024 * 1024 * 1024,
    min: 1024,
    max: 1024 * 1024 * 1024 * 1024,
    description:
      'bound on the pulled images kept unpacked under <data-dir>/images (least recently used evicted; one in use never); also the largest image pulled',
  },
  'image-pull-timeout-ms': {
    type: 'number',
    default: 120_000,
    min: 100,
    max: 3_600_000,
    description: 'bound on one image download from flaps',
  },
  cpus: {
    type: 'number',
    default: cpus().length,
    min: 1,
    max: 1_024,
    description: 'CPUs this worker offers',
  },
  'memory-mb': {
    type: 'number',
    default: Math.floor(totalmem() / 1024 / 1024),
    min: 256,
    max: 16 * 1024 * 1024,
    description: 'memory this worker offers (MB)',
  },
  'stop-timeout-ms': {
    type: 'number',
    default: 10_000,
    min: 0,
    max: 600_000,
    description: 'grace period before SIGKILL on stop',
  },
  'stop-machines-on-exit': {
    type: 'boolean',
    default: false,
    description:
      'stop every machine when flyd exits (and start them at its next boot); by default they run on and the next flyd adopts them',
  },
  'log-sink': {
    type: 'string',
    format: 'address',
    description: 'TCP log collector (host:port) that receives machine output as NDJSON',
  },
  'machine-limits': {
    type: 'string',
    default: 'cgroups',
    choices: ['cgroups', 'off'],
    description:
      "'cgroups': each machine's guest memory and CPUs enforced by a cgroup where the host lets flyd create them; 'off': not enforced",
  },
  'machine-pids-max': {
    type: 'number',
    default: 4_096,
    min: 16,
    max: 4_194_304,
    description:
      "processes and threads one machine may have at once, enforced by its cgroup with --machine-limits cgroups (a fork bomb fails the machine's own forks)",
  },
  'machine-users': {
    type: 'string',
    default: 'auto',
    description:
      "each machine runs as a user of its own, a uid from this range (like 300000-365535); 'auto': that range when flyd runs as root and other users can reach --data-dir, else flyd's own user (with a warning); 'off': flyd's own user",
  },
  'machine-network': {
    type: 'string',
    default: 'auto',
    description:
      "'auto': each machine in a network namespace of its own (as root, with iproute2 and util-linux), listening on its services' internal ports at an address of 198.18.0.0/15 and reaching nothing of the host's loopback; else (with a warning), or 'host': machines share the host's network, each on a free loopback port given as PORT",
  },
  'stopped-networks-max': {
    type: 'number',
    default: 256,
    min: 0,
    max: 100_000,
    description:
      'stopped machines that keep their network namespace (with --machine-network auto), so their next start only enters it: about 200 KB of kernel memory each; past it the longest stopped lose theirs (a start then makes a new one, about 20 ms more)',
  },
  disks: {
    type: 'string',
    default: 'auto',
    description:
      "each volume and each machine's root is an ext4 disk of its size (a sparse image file, loop-mounted): a machine that fills one gets ENOSPC, not the worker's disk; 'auto': so when flyd runs as root with e2fsprogs and loop devices, else plain folders whose size is not enforced (with a warning); 'off': plain folders",
  },
  'machine-root-gb': {
    type: 'number',
    default: 8,
    min: 1,
    max: 500,
    description:
      "size of a machine's root disk when its config's rootfs.size_gb names none (with --disks)",
  },
  'log-write-timeout-ms': {
    type: 'number',
    default: 2_000,
    min: 1,
    max: 600_000,
    description: 'longest a stalled log sink may hold back a machine output',
  },
  'peer-timeout-ms': {
    type: 'number',
    default: 30_000,
    min: 100,
    max: 3_600_000,
    description: 'bound on each call to another worker flyd (a migrate target)',
  },
  'listen-wait-ms': {
    type: 'number',
    default: 10_000,
    min: 0,
    max: 3_600_000,
    description: 'how long a starting machine may take to listen on its service port',
  },
  'busy-wait-ms': {
    type: 'number',
    default: 10_000,
    min: 0,
    max: 600_000,
    description: 'how long an operation on a machine busy with another waits for it before 409',
  },
  'busy-waiters-max': {
    type: 'number',
    default: 16,
    min: 0,
    max: 1_024,
    description: 'operations that may wait at once for one busy machine; past it, 409',
  },
  'history-max': {
    type: 'number',
    default: 100,
    min: 1,
    max: 100_000,
    description: 'finished operations (runs, their steps) and events kept per machine, the newest',
  },
  ...httpLimitsSpec,
} as const;

runMain(async () => {
  const config = parseConfig(
    {
      name: 'flyd',
      summary:
        'The worker scheduler: runs machines as durable FSMs and publishes them to corrosion.',
    },
    spec,
  );
  if (!config) return;
  // Before anything touches the data directory: a second flyd on it exits here, naming the first,
  // instead of killing the machines the first one runs as "leftovers" (see MachineService.boot).
  lockState(join(config['data-dir'], 'flyd.lock'), 'flyd');
  const token = readSecret({
    fileFlag: 'token-file',
    file: config['token-file'],
    variable: 'FLYD_TOKEN',
    required: true,
  });
  const corrosionToken = readSecret({
    fileFlag: 'corrosion-token-file',
    file: config['corrosion-token-file'],
    variable: 'CORROSION_TOKEN',
  });
  const logger = createLogger('flyd');
  if (!['cgroups', 'off'].includes(config['machine-limits']))
    throw new UsageError(
      `--machine-limits must be 'cgroups' or 'off', not '${config['machine-limits']}'`,
    );
  const metrics = startMetrics('flyd');
  const tracing = startTracing('flyd');
  for (const dir of ['machines', 'images'])
    mkdirSync(join(config['data-dir'], dir), { recursive: true });
  const rootsElsewhere = config['roots-dir'] && resolve(config['roots-dir']);
  const rootsDir = rootsElsewhere || join(config['data-dir'], 'roots');
  mkdirSync(rootsDir, { recursive: true });
  // flyd removes the roots of machines it does not have: one roots folder, one flyd.
  if (rootsElsewhere) lockState(join(rootsElsewhere, 'flyd.lock'), 'flyd');
  const project = nodeProjectAbove(rootsDir);
  if (project !== undefined)
    logger.warn(
      `machine roots (${rootsDir}) lie inside a Node project: Node code in every machine sees ${project}, which a worker's machines do not (its "type" decides how .js files load; node_modules answers imports the image lacks); give --roots-dir a folder outside it`,
    );
  const db = openDatabase(join(config['data-dir'], 'flyd.db'));
  const users = MachineUsers.configure(
    db,
    config['machine-users'],
    config['data-dir'],
    rootsElsewhere || undefined,
  );
  if ('off' in users && config['machine-users'] === 'auto')
    logger.warn(`machines run as flyd's own user: ${users.off}`);
  const store = new MachineStore(db, config['history-max']);
  const engine = new FsmEngine(db, logger, { historyMax: config['history-max'] });
  const corrosion = new CorrosionClient({
    url: config['corrosion-url'],
    token: corrosionToken,
  });
  const host = {
    id: config['host-id'],
    region: config.region,
    flydAddr: null,
    cpus: config.cpus,
    memoryMb: config['memory-mb'],
  };
  const publisher = new Publisher(corrosion, store, host, logger);
  const sinkAddress =
    config['log-sink'] === undefined ? undefined : parseListenAddress(config['log-sink']);
  const sink = sinkAddress && new LogSink(sinkAddress, config['log-write-timeout-ms'], logger);
  const logs = new LogFeed({ region: config.region, appOf: (id) => store.get(id)?.app });
  const network = await MachineNetwork.configure(
    config['machine-network'],
    join(config['data-dir'], 'netns'),
    config['stopped-networks-max'],
  );
  if ('off' in network && config['machine-network'] === 'auto')
    logger.warn(`machines share the host's network, each on a loopback port: ${network.off}`);
  const runtime = new ProcessRuntime(
    (id, exit) => machines.exited(id, exit),
    logs,
    sink,
    config['machine-limits'] === 'cgroups' ? Cgroups.detect() : undefined,
    'users' in users ? users.users : undefined,
    'network' in network ? network.network : undefined,
  );
  if (config['machine-limits'] === 'cgroups' && !runtime.enforcesLimits)
    logger.warn('cannot create cgroups here: machine memory and CPU limits are not enforced');
  const disks = await Disks.configure(config.disks, config['data-dir'], rootsDir);
  if ('off' in disks && config.disks === 'auto')
    logger.warn(
      `volumes and machine roots are plain folders, their size not enforced: ${disks.off}`,
    );
  const volumes = new VolumeService(new VolumeStore(db), publisher, {
    dataDir: config['data-dir'],
    hostId: config['host-id'],
    region: config.region,
    disks: 'disks' in disks ? disks.disks.volumes : undefined,
    running: (machineId) => runtime.isRunning(machineId),
    logger,
  });
  if ('users' in users) shieldDataDir(config['data-dir'], rootsDir); // after every folder is made
  const imageCache = new ImageCache({
    dir: join(config['data-dir'], 'images'),
    flapsUrl: config['flaps-url'],
    token,
    bytesMax: config['image-cache-bytes-max'],
    pullTimeoutMs: config['image-pull-timeout-ms'],
    unpackLimits: { unpackedBytesMax: config['image-cache-bytes-max'], entriesMax: 100_000 },
    // Every machine recorded here, whatever its state, may start again on its image.
    inUse: () =>
      new Set(
        store
          .list()
          .filter((machine) => machine.state !== 'destroyed')
          .flatMap((machine) => imageDigest(machine.config) ?? []),
      ),
    logger,
  });
  const peer = new FlydClient({ token, timeoutMs: config['peer-timeout-ms'] });
  const machines = new MachineService(
    store,
    engine,
    runtime,
    publisher,
    {
      dataDir: config['data-dir'],
      imagesDir: config['images-dir'],
      imageCache,
      secrets: new AppSecrets(corrosion, fleetKeyOfFlag(config['fleet-key-file'])),
      region: config.region,
      hostId: config['host-id'],
      stopTimeoutMs: config['stop-timeout-ms'],
      listenWaitMs: config['listen-wait-ms'],
      machinePidsMax: config['machine-pids-max'],
      busyWaitMs: config['busy-wait-ms'],
      busyWaitersMax: config['busy-waiters-max'],
      capacity: host,
      roots: {
        dir: rootsDir,
        disks: 'disks' in disks ? disks.disks.roots : undefined,
        defaultGb: config['machine-root-gb'],
      },
      logger,
    },
    volumes,
    peer,
  );
  const health = new HealthChecks(
    (id, name, status, output) => void publisher.checkChanged(id, name, status, output),
    logger,
  );
  machines.onStateChange((machine) => health.stateChanged(machine));
  observeInventory({ machines: () => store.count(), volumes: () => volumes.count() });
  const app = createFlydServer(
    logger,
    metrics,
    token,
    {
      machines,
      leases: new LeaseStore(db),
      store,
      engine,
      runtime,
      hostId: config['host-id'],
      stopTimeoutMs: config['stop-timeout-ms'],
      volumes,
      logs,
    },
    httpLimits(config, 'FLYD_ERR_OVERLOADED'),
  );
  // Resume and restart before taking calls, then publish the host row with the API's address.
  for (const failure of await volumes.mountAll()) logger.error(`cannot mount ${failure}`);
  const swept = await machines.sweepRoots();
  if (swept.length > 0) logger.info({ machines: swept }, 'removed the roots of machines gone');
  machines.boot();
  const url = await listenHttp(app, config.listen, 'api');
  void publisher.announce(url);

  onShutdown(
    logger,
    async () => {
      // Stop taking calls. Long polls (waits, log follows) end in the server's preClose; the bound
      // is for operations in flight (a stop given its grace), which must not hold the machines'
      // own shutdown past the supervisor's patience, or they would outlive flyd.
      await Promise.race([app.close(), new Promise((resolve) => setTimeout(resolve, closeWaitMs))]);
      health.stopAll();
      const leftRunning = await machines.shutdown(config['stop-machines-on-exit']);
      await volumes.unmountIdle(leftRunning);
      await Promise.race([publisher.flush(), new Promise((resolve) => setTimeout(resolve, 3_000))]);
      publisher.close();
      sink?.close();
      await peer.close();
      await corrosion.close();
      db.close();
      await metrics.shutdown();
      await tracing.shutdown();
    },
    { timeoutMs: config['stop-timeout-ms'] + 10_000 },
  );
  logger.info(
    { host: config['host-id'], region: config.region, images: config['images-dir'] },
    'flyd ready',
  );
});
