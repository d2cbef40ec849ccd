#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  announceListening,
  createLogger,
  listenHttp,
  lockState,
  onShutdown,
  parseConfig,
  readSecret,
  runMain,
  startMetrics,
  UsageError,
} from '@fleet/service';
import { runClientCommand } from './cli.js';
import { backup, cluster, reload, restore, subscribe } from './cli-admin.js';
import { compactionDelayMsMin, nextCompactionDelayMs } from './crdt/log-compaction.js';
import { SchemaError } from './errors.js';
import { QueryProcesses } from './queries/query-processes.js';
import { type ReplicationConfig, Replicator } from './replication/replicator.js';
import { readSchema } from './schema.js';
import { type Agent, createAgentServer } from './server.js';
import { Store } from './store.js';

/** Version log entries looked at per compaction tick (one a second). */
const logCompactionEntriesMax = 5000;

const defaultSchema = join(dirname(fileURLToPath(import.meta.url)), '..', 'schema');

export const agentSpec = {
  db: { type: 'string', required: true, description: 'SQLite database file (created if missing)' },
  'api-addr': {
    type: 'string',
    format: 'address',
    default: '127.0.0.1:8787',
    description: 'HTTP API listen address',
  },
  schema: {
    type: 'string',
    default: defaultSchema,
    description: 'schema file or folder of .sql files',
  },
  'api-token-file': {
    type: 'string',
    description:
      'file holding the bearer token required on /v1 (except /v1/health); or set CORROSION_TOKEN',
  },
  'subscriptions-max': {
    type: 'number',
    default: 1000,
    min: 1,
    max: 100_000,
    description: 'subscriptions kept at once',
  },
  'history-max': {
    type: 'number',
    default: 10_000,
    min: 0,
    max: 1_000_000,
    description: 'changes kept per subscription for resume',
  },
  'subscriber-buffer-bytes-max': {
    type: 'number',
    default: 8 * 1024 * 1024,
    min: 64 * 1024,
    max: 1024 * 1024 * 1024,
    description: 'unsent bytes after which a slow subscriber is disconnected',
  },
  'body-limit-bytes': {
    type: 'number',
    default: 16 * 1024 * 1024,
    min: 1024,
    max: 1024 * 1024 * 1024,
    description: 'largest request body',
  },
  'route-concurrency-max': {
    type: 'number',
    default: 256,
    min: 1,
    max: 65_536,
    description: 'requests in flight per API route; past it, 503',
  },
  'gossip-addr': {
    type: 'string',
    format: 'address',
    description: 'host:port for SWIM and broadcasts (UDP) and sync (TCP); none: a single agent',
  },
  bootstrap: {
    type: 'string',
    default: '',
    description: 'comma-separated gossip addresses to join through',
  },
  'cluster-id': {
    type: 'string',
    default: 'fleet',
    description: 'frames of other clusters are dropped',
  },
  'gossip-key-file': {
    type: 'string',
    description: 'file holding the fleet key that authenticates every frame (required with gossip)',
  },
  'subscription-heartbeat-ms': {
    type: 'number',
    default: 10_000,
    min: 100,
    max: 600_000,
    description:
      'an idle subscription or updates stream gets an empty line (and a TCP keep-alive probe) this often',
  },
  'query-rows-max': {
    type: 'number',
    default: 1_000_000,
    min: 1,
    max: 1_000_000_000,
    description: 'rows one /v1/queries answer may hold; past it the stream ends with an error',
  },
  'query-bytes-max': {
    type: 'number',
    default: 64 * 1024 * 1024,
    min: 1024,
    max: 16 * 1024 * 1024 * 1024,
    description: 'bytes one /v1/queries answer may hold; past it the stream ends with an error',
  },
  'query-time-ms': {
    type: 'number',
    default: 30_000,
    min: 10,
    max: 3_600_000,
    description: 'time one /v1/queries answer may take reading rows; past it, an error event',
  },
  'query-processes': {
    type: 'number',
    default: 2,
    min: 1,
    max: 64,
    description:
      '/v1/queries answered at once, each in a process of its own (started on demand, gone after a minute idle)',
  },
  'probe-interval-ms': {
    type: 'number',
    default: 1000,
    min: 10,
    max: 60_000,
    description: 'SWIM probe period',
  },
  'sync-interval-ms': {
    type: 'number',
    default: 2000,
    min: 10,
    max: 600_000,
    description: 'anti-entropy sync period (up to 4x while rounds find nothing)',
  },
  'sync-peers': {
    type: 'number',
    default: 2,
    min: 1,
    max: 64,
    description: 'members synced with per round',
  },
} as const;

const commands = 'agent | exec | query | subscribe | cluster | backup | restore | reload';
const adminCommands: Record<string, (argv: string[]) => void | Promise<void>> = {
  subscribe,
  cluster,
  backup,
  restore,
  reload,
};

runMain(async () => {
  const [command, ...argv] = process.argv.slice(2);
  if (command === 'agent') return runAgent(argv);
  if (command === 'exec' || command === 'query') return runClientCommand(command, argv);
  const admin = command === undefined ? undefined : adminCommands[command];
  if (admin) return admin(argv);
  if (command === undefined || command === '--help' || command === 'help') {
    process.stdout.write(
      `Usage: corrosion <${commands}> [flags]\n  corrosion <command> --help for its flags\n`,
    );
    return;
  }
  throw new UsageError(`unknown command "${command}" (commands: ${commands})`);
});

function replicationConfig(
  config: NonNullable<ReturnType<typeof parseConfig<typeof agentSpec>>>,
  gossipAddr: string,
): ReplicationConfig {
  const keyFile = config['gossip-key-file'];
  if (!keyFile) throw new UsageError('--gossip-addr needs --gossip-key-file (the fleet key)');
  let key: Buffer;
  try {
    key = Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read --gossip-key-file: ${(error as Error).message}`);
  }
  if (key.length < 16) throw new UsageError('the fleet key must be at least 16 bytes');
  return {
    gossipAddr,
    bootstrap: config.bootstrap
      .split(',')
      .map((addr) => addr.trim())
      .filter((addr) => addr !== ''),
    clusterId: config['cluster-id'],
    key,
    membersPath: `${config.db}.members.json`,
    syncIntervalMs: config['sync-interval-ms'],
    syncPeers: config['sync-peers'],
    probeIntervalMs: config['probe-interval-ms'],
  };
}

async function runAgent(argv: string[]): Promise<void> {
  const config = parseConfig(
    {
      name: 'corrosion agent',
      summary: 'Runs a corrosion agent: the fleet state in SQLite with the Corrosion HTTP API.',
    },
    agentSpec,
    argv,
  );
  if (!config) return;
  // Before anything touches the database: a second agent on it exits here, naming the first.
  lockState(`${config.db}.lock`, 'corrosion agent');
  const apiToken = readSecret({
    fileFlag: 'api-token-file',
    file: config['api-token-file'],
    variable: 'CORROSION_TOKEN',
  });
  const logger = createLogger('corrosion');
  const metrics = startMetrics('corrosion');
  let store: Store;
  try {
    store = new Store(config.db, readSchema(config.schema));
  } catch (error) {
    if (error instanceof SchemaError) throw new UsageError(`schema refused: ${error.message}`);
    throw error;
  }
  let agent: Agent | undefined;
  const replicator = config['gossip-addr']
    ? await Replicator.start(
        store,
        replicationConfig(config, config['gossip-addr']),
        logger,
        (rows) => agent?.rowsChanged(rows),
      )
    : undefined;
  const queries = new QueryProcesses(config.db, {
    processesMax: config['query-processes'],
    waitersMax: config['route-concurrency-max'],
    limits: {
      rowsMax: config['query-rows-max'],
      bytesMax: config['query-bytes-max'],
      timeMs: config['query-time-ms'],
    },
  });
  agent = createAgentServer({
    logger,
    metrics,
    store,
    replication: replicator,
    readSchema: () => readSchema(config.schema),
    apiToken,
    subscriptionsMax: config['subscriptions-max'],
    historyMax: config['history-max'],
    subscriberBufferedBytesMax: config['subscriber-buffer-bytes-max'],
    heartbeatMs: config['subscription-heartbeat-ms'],
    queries,
    bodyLimitBytes: config['body-limit-bytes'],
    routeConcurrencyMax: config['route-concurrency-max'],
  });
  const { app, subscriptions } = agent;
  // A bounded slice of the version log per step keeps it near one entry per (row, version) the
  // clocks still hold, at a cost no write notices (see crdt/log-compaction.ts).
  let compactionDelayMs = compactionDelayMsMin;
  const compactLog = () => {
    const deleted = store.compactLog(logCompactionEntriesMax);
    compactionDelayMs = nextCompactionDelayMs(compactionDelayMs, deleted);
    logCompaction = setTimeout(compactLog, compactionDelayMs).unref();
  };
  let logCompaction = setTimeout(compactLog, compactionDelayMs).unref();
  onShutdown(logger, async () => {
    clearTimeout(logCompaction);
    subscriptions.closeAll(() => undefined);
    app.server.closeAllConnections();
    await app.close();
    await queries.close();
    await replicator?.stop();
    store.close();
    await metrics.shutdown();
  });
  if (replicator) announceListening(logger, 'gossip', `udp://${replicator.gossipAddr}`);
  await listenHttp(app, config['api-addr'], 'api');
  logger.info({ actor_id: store.actorId, version: store.version, db: config.db }, 'agent ready');
}
