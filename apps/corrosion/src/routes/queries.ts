import type { FastifyInstance } from 'fastify';
import type { AgentMetrics } from '../metrics.js';
import { bindable, bindStatement } from '../statements.js';
import type { Store } from '../store.js';
import { startNdjson } from './stream.js';

/** `POST /v1/queries`: one read-only statement, answered as an NDJSON stream of rows. */
export function queryRoutes(app: FastifyInstance, store: Store, meters: AgentMetrics): void {
  app.post('/v1/queries', async (request, reply) => {
    const statement = bindStatement(request.body);
    const compiled = store.prepareRead(statement);
    const params = bindable(statement.params);
    compiled.raw(true);
    const started = performance.now();
    const response = startNdjson(reply);
    response.write(
      `${JSON.stringify({ columns: compiled.columns().map((column) => column.name) })}\n`,
    );
    try {
      // Rows are read in one synchronous step: a better-sqlite3 iterator left open across an
      // await would make every other statement on the connection fail while a client is slow.
      const rows = compiled.all(params) as unknown[][];
      let rowid = 0;
      for (const row of rows) {
        if (!response.write(`${JSON.stringify({ row: [++rowid, row] })}\n`)) {
          await new Promise((resolve) => response.once('drain', resolve));
        }
        if (response.destroyed) return;
      }
      response.end(`${JSON.stringify({ eoq: { time: (performance.now() - started) / 1000 } })}\n`);
      meters.queries.add(1, { outcome: 'ok' });
    } catch (error) {
      meters.queries.add(1, { outcome: 'error' });
      response.end(`${JSON.stringify({ error: (error as Error).message })}\n`);
    }
  });
}
