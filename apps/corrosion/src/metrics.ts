import { metrics } from '@opentelemetry/api';

/** Every instrument of the corrosion agent, in one place. */
export function agentMetrics() {
  const meter = metrics.getMeter('fleet.corrosion');
  return {
    transactions: meter.createCounter('corro_transactions', {
      description: 'write transactions by outcome (ok, error)',
    }),
    queries: meter.createCounter('corro_queries', { description: 'read queries by outcome' }),
    subscribers: meter.createUpDownCounter('corro_subscribers', {
      description: 'subscription streams currently open',
    }),
    slowSubscribers: meter.createCounter('corro_subscribers_dropped', {
      description: 'subscribers disconnected because they did not read fast enough',
    }),
    dbVersion: meter.createObservableGauge('corro_db_version', {
      description: 'the agent db_version (local write transactions)',
    }),
  };
}

export type AgentMetrics = ReturnType<typeof agentMetrics>;
