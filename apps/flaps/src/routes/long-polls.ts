import type { FastifyInstance } from 'fastify';
import { flapsError } from '../errors.js';

/**
 * Long polls (a machine `wait`, held on its worker for up to 60 s) that closing the server ends:
 * each gets a signal aborted in fastify's `preClose` — before the server waits for the requests
 * in flight — and answers 503 FLAPS_ERR_SHUTTING_DOWN, so a shutdown never waits one out.
 */
export function longPolls(app: FastifyInstance) {
  const open = new Set<AbortController>();
  app.addHook('preClose', async () => {
    for (const poll of open)
      poll.abort(flapsError('FLAPS_ERR_SHUTTING_DOWN', 'flaps is shutting down: call again'));
  });
  return async function during<T>(poll: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    open.add(controller);
    try {
      return await poll(controller.signal);
    } catch (error) {
      // What the poll failed with once cut (its call to the worker, as unreachable) is the cut.
      throw controller.signal.aborted ? controller.signal.reason : error;
    } finally {
      open.delete(controller);
    }
  };
}
