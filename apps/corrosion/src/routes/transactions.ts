import type { FastifyInstance } from 'fastify';
import { corroError } from '../errors.js';
import type { AgentMetrics } from '../metrics.js';
import { bindStatement } from '../statements.js';
import type { ExecOutcome, Store } from '../store.js';

/** `POST /v1/transactions`: statements in one SQLite transaction, Corrosion's answer shape. */
export function transactionRoutes(
  app: FastifyInstance,
  store: Store,
  meters: AgentMetrics,
  committed: (outcome: ExecOutcome) => void,
): void {
  app.post('/v1/transactions', async (request) => {
    const body = request.body;
    if (!Array.isArray(body) || body.length === 0) {
      throw corroError(
        'CORRO_ERR_BAD_STATEMENT',
        'body must be a non-empty JSON array of statements',
      );
    }
    const started = performance.now();
    try {
      const outcome = store.transaction(body.map((statement, at) => bindStatement(statement, at)));
      meters.transactions.add(1, { outcome: 'ok' });
      committed(outcome);
      return {
        results: outcome.results,
        time: (performance.now() - started) / 1000,
        version: outcome.version,
        actor_id: store.actorId,
      };
    } catch (error) {
      meters.transactions.add(1, { outcome: 'error' });
      throw error;
    }
  });
}
