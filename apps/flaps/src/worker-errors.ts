import { type FlydAnswerError, FlydUnreachableError } from '@fleet/flyd-client';
import { HttpError } from '@fleet/service';
import { flapsError } from './errors.js';

/**
 * A failed call to a worker as flaps answers it (the `mapError` of flaps' flyd client): a
 * worker's refusal keeps its status and code (FLAPS_ERR_WORKER when it gave none), an
 * unreachable worker is 503 FLAPS_ERR_WORKER_UNREACHABLE.
 */
export function workerFailure(error: FlydAnswerError | FlydUnreachableError): HttpError {
  if (error instanceof FlydUnreachableError)
    return flapsError('FLAPS_ERR_WORKER_UNREACHABLE', error.message);
  return new HttpError(
    error.statusCode,
    error.code ?? 'FLAPS_ERR_WORKER',
    error.detail ?? `worker answered ${error.statusCode}`,
  );
}
