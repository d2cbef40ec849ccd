import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { corroError } from '../errors.js';
import type { AgentMetrics } from '../metrics.js';
import { bindStatement } from '../statements.js';
import type { Subscriber, Subscription } from '../subscription.js';
import type { Subscriptions } from '../subscriptions.js';
import { type StreamLimits, startNdjson, streamWriter } from './stream.js';

/**
 * `POST /v1/subscriptions` (rows, end-of-query, then changes) and
 * `GET /v1/subscriptions/{id}?from=N` (changes after N, then live). A subscriber whose socket
 * holds more than `bufferedBytesMax` unsent bytes is disconnected instead of buffered for; an
 * idle stream gets a heartbeat every `heartbeatMs`.
 */
export function subscriptionRoutes(
  app: FastifyInstance,
  subscriptions: Subscriptions,
  meters: AgentMetrics,
  limits: StreamLimits,
): void {
  const follow = (response: ServerResponse, subscription: Subscription) => {
    const subscriber: Subscriber = streamWriter(response, limits.bufferedBytesMax, () =>
      meters.slowSubscribers.add(1),
    );
    meters.subscribers.add(1);
    response.once('close', () => {
      subscription.detach(subscriber);
      meters.subscribers.add(-1);
    });
    return subscriber;
  };

  const changeId = (from: string | undefined) => {
    if (from === undefined) return undefined;
    const id = Number(from);
    if (from.trim() === '' || !Number.isInteger(id) || id < 0) {
      throw corroError('CORRO_ERR_BAD_QUERY', 'from must be a change id (a non-negative integer)');
    }
    return id;
  };

  /** Streams the changes after `from`, then live ones; a 410 comes before the stream starts. */
  const resume = (reply: FastifyReply, subscription: Subscription, from: number) => {
    subscription.assertResumable(from);
    const response = startNdjson(reply, { 'corro-query-id': subscription.id }, limits.heartbeatMs);
    subscription.resume(follow(response, subscription), from);
  };

  // As Corrosion: with `from`, only an existing subscription of the same query is resumed (the
  // changes after `from`, not every row again); without one, 400.
  app.post<{ Querystring: { skip_rows?: string; from?: string } }>(
    '/v1/subscriptions',
    // `skip_rows` is `true` or `false` (anything else is a 400, not a quiet `false`).
    {
      schema: {
        querystring: { type: 'object', properties: { skip_rows: { enum: ['true', 'false'] } } },
      },
    },
    async (request, reply) => {
      const statement = bindStatement(request.body);
      const from = changeId(request.query.from);
      if (from !== undefined) {
        const existing = subscriptions.find(statement);
        if (!existing) {
          throw corroError(
            'CORRO_ERR_UNKNOWN_SUBSCRIPTION_QUERY',
            'a `from` query param was supplied, but no existing subscription found',
          );
        }
        return resume(reply, existing, from);
      }
      const subscription = subscriptions.open(statement);
      const response = startNdjson(
        reply,
        { 'corro-query-id': subscription.id },
        limits.heartbeatMs,
      );
      subscription.attach(follow(response, subscription), request.query.skip_rows === 'true');
    },
  );

  app.get<{ Params: { id: string }; Querystring: { from?: string } }>(
    '/v1/subscriptions/:id',
    async (request, reply) => {
      const subscription = subscriptions.get(request.params.id);
      const from = changeId(request.query.from);
      if (from !== undefined) return resume(reply, subscription, from);
      const response = startNdjson(
        reply,
        { 'corro-query-id': subscription.id },
        limits.heartbeatMs,
      );
      subscription.attach(follow(response, subscription));
    },
  );
}
