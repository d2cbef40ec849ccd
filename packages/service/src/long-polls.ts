import type { FastifyInstance } from 'fastify';

/**
 * Long polls (a machine `wait` held for up to a minute) that closing `app` ends: each runs with a
 * signal aborted in fastify's `preClose` — before the server waits for the requests in flight —
 * with `shuttingDown()` (the server's 503 "shutting down" error) as its reason, so a shutdown never
 * waits one out. A poll that fails once cut (its call to another server, say) fails with that
 * reason: the cut is what happened.
 */
export function longPolls(app: FastifyInstance, shuttingDown: () => Error) {
  const open = new Set<AbortController>();
  app.addHook('preClose', async () => {
    for (const poll of open) poll.abort(shuttingDown());
  });
  return async function during<T>(poll: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    open.add(controller);
    try {
      return await poll(controller.signal);
    } catch (error) {
      throw controller.signal.aborted ? controller.signal.reason : error;
    } finally {
      open.delete(controller);
    }
  };
}
