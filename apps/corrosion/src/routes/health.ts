import type { FastifyInstance } from 'fastify';
import { corroError } from '../errors.js';
import type { ReplicationHandle } from '../server.js';
import type { Store } from '../store.js';
import type { Subscriptions } from '../subscriptions.js';

/** `/v1/health`'s thresholds, as Corrosion's `HealthQuery` names them; each applies only when given. */
interface HealthQuery {
  gaps?: string;
  p99_lag?: string;
  max_queue?: string;
  queue_size?: string;
  failure_status?: string;
}

function threshold(
  query: HealthQuery,
  name: keyof HealthQuery,
  whole: boolean,
): number | undefined {
  const given = query[name];
  if (given === undefined) return undefined;
  const value = Number(given);
  if (given.trim() === '' || !Number.isFinite(value) || (whole && !Number.isInteger(value))) {
    throw corroError(
      'CORRO_ERR_BAD_QUERY',
      `${name} must be a ${whole ? 'whole number' : 'number'}, not ${JSON.stringify(given)}`,
    );
  }
  return value;
}

/**
 * `GET /v1/health` answers as Corrosion's does, `{"response": {gaps, members, p99_lag,
 * queue_size}}` (p99_lag in seconds), with the failure status (503 unless `failure_status` says
 * otherwise) when a threshold asked for is passed: `gaps`, `max_queue`, or `p99_lag` — the lag
 * only while the queue is also above `queue_size`, if that is given, since a slow sender elsewhere
 * raises lag on a healthy node. `GET /v1/status` is Fleet's own fuller view for operators.
 */
export function healthRoutes(
  app: FastifyInstance,
  store: Store,
  subscriptions: Subscriptions,
  replication: ReplicationHandle | undefined,
): void {
  app.get<{ Querystring: HealthQuery }>('/v1/health', async (request, reply) => {
    const query = request.query;
    const gapsMax = threshold(query, 'gaps', true);
    const lagMax = threshold(query, 'p99_lag', false);
    const queueMax = threshold(query, 'max_queue', true);
    const lagQueueMin = threshold(query, 'queue_size', true);
    const failureStatus = threshold(query, 'failure_status', true) ?? 503;
    if (failureStatus < 100 || failureStatus > 599) {
      throw corroError(
        'CORRO_ERR_BAD_QUERY',
        `failure_status must be an HTTP status, not ${failureStatus}`,
      );
    }
    const stats = replication?.stats();
    const gaps = stats?.gaps ?? store.bookkeeping.gapCount();
    const queueSize = stats?.apply_queue ?? 0;
    const p99Lag = (stats?.apply_lag_p99_ms ?? 0) / 1000;
    const unhealthy =
      (gapsMax !== undefined && gaps > gapsMax) ||
      (queueMax !== undefined && queueSize > queueMax) ||
      (lagMax !== undefined &&
        p99Lag > lagMax &&
        (lagQueueMin === undefined || queueSize > lagQueueMin));
    reply.code(unhealthy ? failureStatus : 200);
    const members = stats?.members.filter((member) => member.state === 'alive').length ?? 0;
    return { response: { gaps, members, p99_lag: p99Lag, queue_size: queueSize } };
  });

  app.get('/v1/status', async () => {
    const stats = replication?.stats();
    return {
      actor_id: store.actorId,
      version: store.version,
      subscriptions: subscriptions.size,
      gaps: stats?.gaps ?? store.bookkeeping.gapCount(),
      ...(stats ? { replication: stats } : {}),
    };
  });
}
