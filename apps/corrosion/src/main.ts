#!/usr/bin/env node
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createLogger,
  listenHttp,
  onShutdown,
  parseConfig,
  runMain,
  startMetrics,
  UsageError,
} from '@fleet/service';
import { runClientCommand } from './cli.js';
import { SchemaError } from './errors.js';
import { readSchema } from './schema.js';
import { createAgentServer } from './server.js';
import { Store } from './store.js';

const defaultSchema = join(dirname(fileURLToPath(import.meta.url)), '..', 'schema');

export const agentSpec = {
  db: { type: 'string', required: true, description: 'SQLite database file (created if missing)' },
  'api-addr': { type: 'string', default: '127.0.0.1:8787', description: 'HTTP API listen address' },
  schema: {
    type: 'string',
    default: defaultSchema,
    description: 'schema file or folder of .sql files',
  },
  'api-token': { type: 'string', description: 'bearer token required on /v1 (except /v1/health)' },
  'subscriptions-max': { type: 'number', default: 1000, description: 'subscriptions kept at once' },
  'history-max': {
    type: 'number',
    default: 10_000,
    description: 'changes kept per subscription for resume',
  },
  'subscriber-buffer-bytes-max': {
    type: 'number',
    default: 8 * 1024 * 1024,
    description: 'unsent bytes after which a slow subscriber is disconnected',
  },
  'body-limit-bytes': {
    type: 'number',
    default: 16 * 1024 * 1024,
    description: 'largest request body',
  },
} as const;

const commands = 'agent | exec | query';

runMain(async () => {
  const [command, ...argv] = process.argv.slice(2);
  if (command === 'agent') return runAgent(argv);
  if (command === 'exec' || command === 'query') return runClientCommand(command, argv);
  if (command === undefined || command === '--help' || command === 'help') {
    process.stdout.write(
      `Usage: corrosion <${commands}> [flags]\n  corrosion <command> --help for its flags\n`,
    );
    return;
  }
  throw new UsageError(`unknown command "${command}" (commands: ${commands})`);
});

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
  const logger = createLogger('corrosion');
  const metrics = startMetrics('corrosion');
  let store: Store;
  try {
    store = new Store(config.db, readSchema(config.schema));
  } catch (error) {
    if (error instanceof SchemaError) throw new UsageError(`schema refused: ${error.message}`);
    throw error;
  }
  const { app, subscriptions } = createAgentServer({
    logger,
    metrics,
    store,
    apiToken: config['api-token'],
    subscriptionsMax: config['subscriptions-max'],
    historyMax: config['history-max'],
    subscriberBufferedBytesMax: config['subscriber-buffer-bytes-max'],
    bodyLimitBytes: config['body-limit-bytes'],
  });
  onShutdown(logger, async () => {
    subscriptions.closeAll(() => undefined);
    app.server.closeAllConnections();
    await app.close();
    store.close();
    await metrics.shutdown();
  });
  await listenHttp(app, config['api-addr'], 'api');
  logger.info({ actor_id: store.actorId, version: store.version, db: config.db }, 'agent ready');
}
