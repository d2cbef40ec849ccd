import type { FastifyInstance } from 'fastify';
import { flydError } from '../errors.js';

/**
 * Long polls (a `wait` of up to 60 s) that closing the server ends: each gets a signal aborted in
 * fastify's `preClose` — before the server waits for the requests in flight — with 503
 * FLYD_ERR_SHUTTING_DOWN as its reason, so a shutdown never waits one out.
 */
export function longPolls(app: FastifyInstance) {
  const open = new Set<AbortController>();
  app.addHook('preClose', async () => {
    for (const poll of open)
      poll.abort(flydError('FLYD_ERR_SHUTTING_DOWN', 'flyd is shutting down: call again'));
  });
  return async function during<T>(poll: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    open.add(controller);
    try {
      return await poll(controller.signal);
    } finally {
      open.delete(controller);
    }
  };
}
