import type { FastifyInstance } from 'fastify';
import type { ReplicationHandle } from '../server.js';
import type { Store } from '../store.js';
import type { Subscriptions } from '../subscriptions.js';

interface Thresholds {
  gapsMax: number;
  lagMsMax: number;
  queueMax: number;
}

/**
 * `GET /v1/health`: the agent's state with replication's gaps, members, lag and queues; 503
 * when gaps, apply lag or a queue pass their threshold (defaults from the flags, or per call:
 * `?gaps=`, `?lag_ms=`, `?queue=`), so a load balancer or the operator sees a node catching up.
 */
export function healthRoutes(
  app: FastifyInstance,
  store: Store,
  subscriptions: Subscriptions,
  replication: ReplicationHandle | undefined,
  defaults: Thresholds,
): void {
  app.get<{ Querystring: { gaps?: string; lag_ms?: string; queue?: string } }>(
    '/v1/health',
    async (request, reply) => {
      const limit = (given: string | undefined, fallback: number) =>
        given === undefined || !Number.isFinite(Number(given)) ? fallback : Number(given);
      const stats = replication?.stats();
      const gaps = stats?.gaps ?? store.bookkeeping.gapCount();
      const problems: string[] = [];
      if (gaps > limit(request.query.gaps, defaults.gapsMax))
        problems.push(`${gaps} versions missing`);
      if (stats && stats.apply_lag_ms > limit(request.query.lag_ms, defaults.lagMsMax)) {
        problems.push(`apply lag ${stats.apply_lag_ms} ms`);
      }
      const queued = stats ? Math.max(stats.apply_queue, stats.broadcast_queue) : 0;
      if (queued > limit(request.query.queue, defaults.queueMax)) problems.push(`${queued} queued`);
      if (problems.length > 0) reply.code(503);
      return {
        ok: problems.length === 0,
        problems,
        actor_id: store.actorId,
        version: store.version,
        subscriptions: subscriptions.size,
        gaps,
        members: stats?.members.filter((member) => member.state === 'alive').length ?? 0,
        ...(stats ? { replication: stats } : {}),
      };
    },
  );
}
