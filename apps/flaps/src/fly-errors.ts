import type { FastifyInstance } from 'fastify';

/** Fly's error code for each HTTP status (the `"<code>: message"` prefix of its error bodies). */
const flyCodeByStatus: Record<number, string> = {
  400: 'invalid_argument',
  401: 'unauthenticated',
  404: 'not_found',
  408: 'deadline_exceeded',
  409: 'aborted',
  412: 'failed_precondition',
  413: 'invalid_argument',
  415: 'invalid_argument',
  422: 'unprocessable',
  500: 'internal',
  503: 'unavailable',
};

/** Where our code says more than the status: also sent as `status`, which fly-go reads. */
const flyStatusByCode: Record<string, string> = {
  FLAPS_ERR_NAME_TAKEN: 'name_taken',
  FLAPS_ERR_NO_CAPACITY: 'insufficient_capacity',
  // A worker refusing a machine it has no room for (placement raced, or it counts CPUs).
  FLYD_ERR_NO_CAPACITY: 'insufficient_capacity',
};

/**
 * Rewrites every error body into Fly's shape: `{"error": "<code>: message", "status"?}` with
 * our stable `code` kept beside it. fly-go reads `status` to tell `name_taken` and
 * `insufficient_capacity` apart, and compares a missing app's error with `app not found`
 * verbatim (`AppNameAvailable`), so that one keeps Fly's exact text.
 */
export function flyErrorBodies(app: FastifyInstance): void {
  app.addHook('onSend', async (_request, reply, payload) => {
    if (reply.statusCode < 400 || typeof payload !== 'string') return payload;
    let body: { error?: unknown; code?: unknown; status?: unknown };
    try {
      body = JSON.parse(payload);
    } catch {
      return payload;
    }
    if (typeof body?.error !== 'string') return payload;
    const code = typeof body.code === 'string' ? body.code : '';
    const status = flyStatusByCode[code];
    const prefix = status ?? flyCodeByStatus[reply.statusCode] ?? 'unknown';
    const error =
      code === 'FLAPS_ERR_APP_NOT_FOUND'
        ? 'app not found'
        : body.error.startsWith(`${prefix}: `)
          ? body.error
          : `${prefix}: ${body.error}`;
    return JSON.stringify({ ...body, error, ...(status ? { status } : {}) });
  });
}
