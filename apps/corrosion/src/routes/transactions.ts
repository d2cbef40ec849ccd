import { HttpError } from '@fleet/service';
import type { FastifyInstance } from 'fastify';
import { CorrosionErrors, corroError } from '../errors.js';
import type { AgentMetrics } from '../metrics.js';
import { type BoundStatement, bindable, bindStatement } from '../statements.js';
import type { ExecOutcome, Store } from '../store.js';

/**
 * `POST /v1/transactions`: statements in one SQLite transaction, answered as Corrosion answers:
 * `{results, time, version, actor_id}`; an empty list is a 400 and a statement that fails in
 * SQLite a 500 (the whole transaction rolled back), both with `results: [{"error"}]` and
 * `version: null`; so is a statement that writes anything but rows of the schema's tables, as a
 * 400 before anything runs. A body that is not a list of statements is a 400 naming the problem.
 */
export function transactionRoutes(
  app: FastifyInstance,
  store: Store,
  meters: AgentMetrics,
  committed: (outcome: ExecOutcome) => void,
): void {
  app.post('/v1/transactions', async (request, reply) => {
    const body = request.body;
    if (!Array.isArray(body)) {
      throw corroError('CORRO_ERR_BAD_STATEMENT', 'body must be a JSON array of statements');
    }
    const failed = (status: number, error: string, code?: string) => {
      meters.transactions.add(1, { outcome: 'error' });
      reply.code(status);
      return { results: [{ error }], time: 0, version: null, actor_id: store.actorId, code };
    };
    if (body.length === 0) {
      return failed(400, 'at least 1 statement is required', 'CORRO_ERR_BAD_STATEMENT');
    }
    // A statement of the wrong shape is the caller's mistake, told before anything runs.
    const statements: BoundStatement[] = body.map((statement, at) => bindStatement(statement, at));
    for (const statement of statements) bindable(statement.params);
    const started = performance.now();
    let outcome: ExecOutcome;
    try {
      outcome = store.transaction(statements);
    } catch (error) {
      const message = (error as Error).message;
      request.log.info({ err: message }, 'transaction failed');
      // Refused before anything ran (see WriteTargets): the caller's mistake, not a failure.
      if (error instanceof HttpError && error.code === 'CORRO_ERR_FORBIDDEN_WRITE') {
        return failed(error.statusCode, message, error.code);
      }
      const code: keyof typeof CorrosionErrors = 'CORRO_ERR_TRANSACTION_FAILED';
      return failed(CorrosionErrors[code][0], message, code);
    }
    meters.transactions.add(1, { outcome: 'ok' });
    committed(outcome);
    return {
      results: outcome.results,
      time: (performance.now() - started) / 1000,
      version: outcome.version,
      actor_id: store.actorId,
    };
  });
}
