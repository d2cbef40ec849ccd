import type { FastifyInstance } from 'fastify';
import type { AgentMetrics } from '../metrics.js';
import type { QueryProcesses } from '../queries/query-processes.js';
import { bindable, bindStatement } from '../statements.js';
import type { Store } from '../store.js';
import { startNdjson } from './stream.js';

/**
 * `POST /v1/queries`: one read-only statement, answered as an NDJSON stream of rows, as
 * Corrosion's: `{"columns"}`, `{"row": [rowid, cells]}`…, then `{"eoq": {"time"}}` or
 * `{"error"}`. The statement is checked here (a writing one is a 400) and run in a query process
 * (`QueryProcesses`), bounded in rows, bytes and time: however long it takes, the agent goes on
 * writing, replicating and answering meanwhile.
 */
export function queryRoutes(
  app: FastifyInstance,
  store: Store,
  meters: AgentMetrics,
  queries: QueryProcesses,
): void {
  app.post('/v1/queries', async (request, reply) => {
    const statement = bindStatement(request.body);
    store.prepareRead(statement);
    const params = bindable(statement.params);
    const outcome = await queries.run(statement.sql, params, () => startNdjson(reply));
    meters.queries.add(1, { outcome });
  });
}
