import { CorrosionError } from '@fleet/corrosion-client';
import { flapsError } from './errors.js';

/**
 * A call to flaps' corrosion (the state store): a failure of the store (unreachable, refused,
 * a statement it rejects) is 503 FLAPS_ERR_STATE_STORE to the caller; other errors pass as they are.
 */
export async function stateStoreCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof CorrosionError)
      throw flapsError('FLAPS_ERR_STATE_STORE', `state store: ${error.message}`);
    throw error;
  }
}
