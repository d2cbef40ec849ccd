import type { FastifyInstance } from 'fastify';
import type { AgentMetrics } from '../metrics.js';
import { bindable, bindStatement } from '../statements.js';
import type { Store } from '../store.js';
import { startNdjson } from './stream.js';

/** What one query may return and take; past a bound its stream ends with an error event. */
export interface QueryLimits {
  rowsMax: number;
  /** Bytes of NDJSON one answer may hold (sent or still in the socket's buffer). */
  bytesMax: number;
  timeMs: number;
}

/** Rows between two looks at the clock. */
const clockEvery = 256;

/**
 * `POST /v1/queries`: one read-only statement, answered as an NDJSON stream of rows, as
 * Corrosion's: `{"columns"}`, `{"row": [rowid, cells]}`…, then `{"eoq": {"time"}}` or
 * `{"error"}`. Rows come from the statement's iterator in one synchronous pass (an iterator left
 * open across an await would make every other statement on the connection fail) and go straight
 * to the socket, bounded in rows, bytes and time: a query never holds its whole result in memory
 * beyond `bytesMax`, and nothing waits on a client, so one that goes away costs nothing more.
 */
export function queryRoutes(
  app: FastifyInstance,
  store: Store,
  meters: AgentMetrics,
  limits: QueryLimits,
): void {
  app.post('/v1/queries', async (request, reply) => {
    const statement = bindStatement(request.body);
    const compiled = store.prepareRead(statement);
    const params = bindable(statement.params);
    compiled.raw(true);
    const started = performance.now();
    const response = startNdjson(reply);
    const columns = compiled.columns().map((column) => column.name);
    let bytes = 0;
    const send = (event: unknown) => {
      const line = `${JSON.stringify(event)}\n`;
      bytes += Buffer.byteLength(line);
      response.write(line);
    };
    send({ columns });
    let rowid = 0;
    let cut: string | undefined;
    try {
      for (const row of compiled.iterate(params) as IterableIterator<unknown[]>) {
        if (response.destroyed) {
          cut = 'client_gone';
          break;
        }
        send({ row: [++rowid, row] });
        if (rowid >= limits.rowsMax) cut = `more than ${limits.rowsMax} rows (--query-rows-max)`;
        else if (bytes > limits.bytesMax)
          cut = `more than ${limits.bytesMax} bytes (--query-bytes-max)`;
        else if (rowid % clockEvery === 0 && performance.now() - started > limits.timeMs)
          cut = `longer than ${limits.timeMs} ms (--query-time-ms)`;
        if (cut) break; // leaving the loop closes the iterator
      }
    } catch (error) {
      meters.queries.add(1, { outcome: 'error' });
      response.end(`${JSON.stringify({ error: (error as Error).message })}\n`);
      return;
    }
    if (cut === 'client_gone') {
      meters.queries.add(1, { outcome: 'client_gone' });
      return;
    }
    if (cut) {
      meters.queries.add(1, { outcome: 'cut' });
      response.end(`${JSON.stringify({ error: `query stopped after ${rowid} rows: ${cut}` })}\n`);
      return;
    }
    meters.queries.add(1, { outcome: 'ok' });
    response.end(`${JSON.stringify({ eoq: { time: (performance.now() - started) / 1000 } })}\n`);
  });
}
