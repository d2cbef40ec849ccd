import type { Readable } from 'node:stream';
import {
  type CallOptions,
  FlydAnswerError,
  FlydUnreachableError,
  FlydClient as InternalClient,
} from '@fleet/flyd-client';
import { HttpError } from '@fleet/service';
import { flapsError } from './errors.js';

/**
 * flyd's client (@fleet/flyd-client) whose failures are flaps' answers: a worker's refusal keeps
 * its status and code (FLAPS_ERR_WORKER when it gave none), an unreachable worker is 503
 * FLAPS_ERR_WORKER_UNREACHABLE.
 */
export class FlydClient extends InternalClient {
  constructor(token: string, timeoutMs: number) {
    super({ token, timeoutMs, connections: 32 });
  }

  override async call<T>(
    baseUrl: string,
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    body?: unknown,
    options?: CallOptions,
  ): Promise<T> {
    try {
      return await super.call<T>(baseUrl, method, path, body, options);
    } catch (error) {
      throw asFlapsError(error);
    }
  }

  override async stream(baseUrl: string, path: string, signal: AbortSignal): Promise<Readable> {
    try {
      return await super.stream(baseUrl, path, signal);
    } catch (error) {
      throw asFlapsError(error);
    }
  }
}

function asFlapsError(error: unknown): unknown {
  if (error instanceof FlydUnreachableError)
    return flapsError('FLAPS_ERR_WORKER_UNREACHABLE', error.message);
  if (error instanceof FlydAnswerError)
    return new HttpError(
      error.statusCode,
      error.code ?? 'FLAPS_ERR_WORKER',
      error.detail ?? `worker answered ${error.statusCode}`,
    );
  return error;
}
