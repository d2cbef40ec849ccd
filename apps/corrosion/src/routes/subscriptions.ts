import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { corroError } from '../errors.js';
import type { AgentMetrics } from '../metrics.js';
import { bindStatement } from '../statements.js';
import type { Subscriber, Subscription } from '../subscription.js';
import type { Subscriptions } from '../subscriptions.js';
import { startNdjson, streamWriter } from './stream.js';

/**
 * `POST /v1/subscriptions` (rows, end-of-query, then changes) and
 * `GET /v1/subscriptions/{id}?from=N` (changes after N, then live). A subscriber whose socket
 * holds more than `bufferedBytesMax` unsent bytes is disconnected instead of buffered for.
 */
export function subscriptionRoutes(
  app: FastifyInstance,
  subscriptions: Subscriptions,
  meters: AgentMetrics,
  bufferedBytesMax: number,
): void {
  const follow = (response: ServerResponse, subscription: Subscription) => {
    const subscriber: Subscriber = streamWriter(response, bufferedBytesMax, () =>
      meters.slowSubscribers.add(1),
    );
    meters.subscribers.add(1);
    response.once('close', () => {
      subscription.detach(subscriber);
      meters.subscribers.add(-1);
    });
    return subscriber;
  };

  app.post<{ Querystring: { skip_rows?: string } }>('/v1/subscriptions', async (request, reply) => {
    const subscription = subscriptions.open(bindStatement(request.body));
    const response = startNdjson(reply, { 'corro-query-id': subscription.id });
    subscription.attach(follow(response, subscription), request.query.skip_rows === 'true');
  });

  app.get<{ Params: { id: string }; Querystring: { from?: string } }>(
    '/v1/subscriptions/:id',
    async (request, reply) => {
      const subscription = subscriptions.get(request.params.id);
      const from = request.query.from === undefined ? undefined : Number(request.query.from);
      if (from !== undefined && (!Number.isInteger(from) || from < 0)) {
        throw corroError(
          'CORRO_ERR_BAD_STATEMENT',
          'from must be a change id (a non-negative integer)',
        );
      }
      if (from === undefined) {
        const response = startNdjson(reply, { 'corro-query-id': subscription.id });
        subscription.attach(follow(response, subscription));
        return;
      }
      subscription.assertResumable(from); // a 410 must come before the stream starts
      const response = startNdjson(reply, { 'corro-query-id': subscription.id });
      subscription.resume(follow(response, subscription), from);
    },
  );
}
