import {
  authorizationMatches,
  createHttpServer,
  type Logger,
  type MetricsExport,
} from '@fleet/service';
import type { FastifyInstance } from 'fastify';
import type { RowChange } from './crdt/crdt.js';
import { corroError } from './errors.js';
import { agentMetrics, watchReplication } from './metrics.js';
import type { QueryProcesses } from './queries/query-processes.js';
import type { ReplicationStats } from './replication/replicator.js';
import { adminRoutes } from './routes/admin.js';
import { healthRoutes } from './routes/health.js';
import { queryRoutes } from './routes/queries.js';
import { subscriptionRoutes } from './routes/subscriptions.js';
import { transactionRoutes } from './routes/transactions.js';
import { updateRoutes } from './routes/updates.js';
import type { ExecOutcome, Store } from './store.js';
import { Subscriptions } from './subscriptions.js';
import { Updates } from './updates.js';

/** What the API needs of replication (absent on a single agent without gossip). */
export interface ReplicationHandle {
  committed(outcome: ExecOutcome): void;
  stats(): ReplicationStats;
}

export interface AgentOptions {
  logger: Logger;
  metrics: MetricsExport;
  store: Store;
  replication?: ReplicationHandle;
  /** The schema text to apply on `POST /v1/migrations` with no body (re-read at each call). */
  readSchema: () => string;
  apiToken?: string;
  subscriptionsMax: number;
  historyMax: number;
  subscriberBufferedBytesMax: number;
  /** Idle subscription and updates streams get an empty line this often. */
  heartbeatMs: number;
  /** Where `/v1/queries` run (processes of their own, bounded in rows, bytes and time). */
  queries: QueryProcesses;
  bodyLimitBytes: number;
  /** Requests in flight per route at most; past it, 503. */
  routeConcurrencyMax: number;
}

export interface Agent {
  app: FastifyInstance;
  subscriptions: Subscriptions;
  /** Rows changed by a merge: subscriptions and updates follow them. */
  rowsChanged(rows: RowChange[]): void;
}

/** The agent's HTTP API over one store. */
export function createAgentServer(options: AgentOptions): Agent {
  const { store } = options;
  const app = createHttpServer({
    logger: options.logger,
    metrics: options.metrics,
    bodyLimitBytes: options.bodyLimitBytes,
  });
  const meters = agentMetrics();
  meters.dbVersion.addCallback((result) => result.observe(store.version));
  if (options.replication) watchReplication(options.replication);
  const subscriptions = new Subscriptions(store, {
    subscriptionsMax: options.subscriptionsMax,
    historyMax: options.historyMax,
  });
  const updates = new Updates(() => store.tableNames());
  const rowsChanged = (rows: RowChange[]) => {
    subscriptions.committed(rows);
    updates.notify(rows);
  };
  if (options.apiToken) requireToken(app, options.apiToken);
  limitConcurrency(app, options.routeConcurrencyMax);
  transactionRoutes(app, store, meters, (outcome) => {
    rowsChanged(outcome.rows);
    options.replication?.committed(outcome);
  });
  queryRoutes(app, store, meters, options.queries);
  const streams = {
    bufferedBytesMax: options.subscriberBufferedBytesMax,
    heartbeatMs: options.heartbeatMs,
  };
  subscriptionRoutes(app, subscriptions, meters, streams);
  updateRoutes(app, updates, meters, streams);
  healthRoutes(app, store, subscriptions, options.replication);
  adminRoutes(app, store, options.readSchema);
  return { app, subscriptions, rowsChanged };
}

function requireToken(app: FastifyInstance, token: string): void {
  app.addHook('onRequest', async (request) => {
    if (!request.url.startsWith('/v1/') || request.url.startsWith('/v1/health')) return;
    if (!authorizationMatches(request.headers.authorization, token)) {
      throw corroError('CORRO_ERR_UNAUTHORIZED', 'missing or wrong bearer token');
    }
  });
}

/**
 * At most `max` requests in flight per route (streams count until they end): past it the
 * agent answers 503 at once instead of queueing work it cannot keep up with.
 */
function limitConcurrency(app: FastifyInstance, max: number): void {
  const inFlight = new Map<string, number>();
  app.addHook('onRequest', async (request) => {
    const route = request.routeOptions.url;
    if (route === undefined || !route.startsWith('/v1/') || route === '/v1/health') return;
    const count = inFlight.get(route) ?? 0;
    if (count >= max) {
      throw corroError('CORRO_ERR_OVERLOADED', `${route}: ${max} requests already in flight`);
    }
    inFlight.set(route, count + 1);
    request.raw.once('close', () => inFlight.set(route, (inFlight.get(route) ?? 1) - 1));
  });
}
