import {
  authorizationMatches,
  createHttpServer,
  type Logger,
  type MetricsExport,
} from '@fleet/service';
import type { FastifyInstance } from 'fastify';
import { corroError } from './errors.js';
import { agentMetrics } from './metrics.js';
import { queryRoutes } from './routes/queries.js';
import { subscriptionRoutes } from './routes/subscriptions.js';
import { transactionRoutes } from './routes/transactions.js';
import type { Store } from './store.js';
import { Subscriptions } from './subscriptions.js';

export interface AgentOptions {
  logger: Logger;
  metrics: MetricsExport;
  store: Store;
  apiToken?: string;
  subscriptionsMax: number;
  historyMax: number;
  subscriberBufferedBytesMax: number;
  bodyLimitBytes: number;
}

/** The agent's HTTP API over one store. */
export function createAgentServer(options: AgentOptions): {
  app: FastifyInstance;
  subscriptions: Subscriptions;
} {
  const { store } = options;
  const app = createHttpServer({
    logger: options.logger,
    metrics: options.metrics,
    bodyLimitBytes: options.bodyLimitBytes,
  });
  const meters = agentMetrics();
  meters.dbVersion.addCallback((result) => result.observe(store.version));
  const subscriptions = new Subscriptions(store, {
    subscriptionsMax: options.subscriptionsMax,
    historyMax: options.historyMax,
  });
  if (options.apiToken) requireToken(app, options.apiToken);
  transactionRoutes(app, store, subscriptions, meters);
  queryRoutes(app, store, meters);
  subscriptionRoutes(app, subscriptions, meters, options.subscriberBufferedBytesMax);
  app.get('/v1/health', async () => ({
    ok: true,
    actor_id: store.actorId,
    version: store.version,
    subscriptions: subscriptions.size,
  }));
  return { app, subscriptions };
}

function requireToken(app: FastifyInstance, token: string): void {
  app.addHook('onRequest', async (request) => {
    if (!request.url.startsWith('/v1/') || request.url.startsWith('/v1/health')) return;
    if (!authorizationMatches(request.headers.authorization, token)) {
      throw corroError('CORRO_ERR_UNAUTHORIZED', 'missing or wrong bearer token');
    }
  });
}
