import { type FlydAnswerError, FlydUnreachableError } from '@fleet/flyd-client';
import { HttpError } from '@fleet/service';
import { flapsError } from './errors.js';

/**
 * A failed call to a worker as flaps answers it (the `mapError` of flaps' flyd client): a
 * worker's refusal keeps its status and code, an answer without a code (not flyd's own) is 502
 * FLAPS_ERR_WORKER, an unreachable worker is 503 FLAPS_ERR_WORKER_UNREACHABLE.
 */
export function workerFailure(error: FlydAnswerError | FlydUnreachableError): HttpError {
  if (error instanceof FlydUnreachableError)
    return flapsError('FLAPS_ERR_WORKER_UNREACHABLE', error.message);
  const detail = error.detail ?? `worker answered ${error.statusCode}`;
  if (error.code === undefined) return flapsError('FLAPS_ERR_WORKER', detail);
  return new HttpError(error.statusCode, error.code, detail);
}
