import type { FastifyInstance } from 'fastify';
import type { AgentMetrics } from '../metrics.js';
import type { Updates } from '../updates.js';
import { type StreamLimits, startNdjson, streamWriter } from './stream.js';

/** `POST /v1/updates/{table}`: primary keys of the table that change from now on (NDJSON). */
export function updateRoutes(
  app: FastifyInstance,
  updates: Updates,
  meters: AgentMetrics,
  limits: StreamLimits,
): void {
  app.post<{ Params: { table: string } }>('/v1/updates/:table', async (request, reply) => {
    // Following first: an unknown table is a 400 before the stream starts.
    let write: (line: string) => boolean = () => true;
    const unfollow = updates.follow(request.params.table, (line) => write(line));
    const response = startNdjson(reply, {}, limits.heartbeatMs);
    write = streamWriter(response, limits.bufferedBytesMax, () => meters.slowSubscribers.add(1));
    response.once('close', unfollow);
  });
}
