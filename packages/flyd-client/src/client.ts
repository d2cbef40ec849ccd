import type { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { FlydAnswerError, FlydUnreachableError } from './errors.js';

export interface FlydClientOptions {
  /** The internal token every flyd of the fleet shares (`--token`). */
  token: string;
  /** Bound on each call's answer (headers and body), unless the call gives its own. */
  timeoutMs: number;
  /** Connections kept per worker for calls (streams have a pool of their own). */
  connections?: number;
  /**
   * What a failure of `call` or `stream` is thrown as, instead of the FlydAnswerError or
   * FlydUnreachableError itself: flaps turns them into its own HTTP answers here, once.
   */
  mapError?: (error: FlydAnswerError | FlydUnreachableError) => Error;
}

export interface CallOptions {
  timeoutMs?: number;
  /** The Machines API lease a mutating call holds (`fly-machine-lease-nonce`). */
  leaseNonce?: string;
  /** A body streamed as it is read (a volume's tar), instead of a JSON `body`. */
  stream?: Readable;
  /** More request headers (a volume's record beside its tar). */
  headers?: Record<string, string>;
  /** Ends the call early (a long poll cut by the caller's shutdown): it fails as unreachable. */
  signal?: AbortSignal;
}

/**
 * Calls a worker's flyd with the internal token. An answer that is not a success throws a
 * FlydAnswerError (status, code, flyd's message); a worker that cannot be reached throws a
 * FlydUnreachableError (each passed through `mapError` when given). Every call has a timeout.
 */
export class FlydClient {
  readonly #calls: Agent;
  /** Streams (logs that follow) hold their connection for as long as they last: a pool apart. */
  readonly #streams = new Agent();

  constructor(private readonly options: FlydClientOptions) {
    this.#calls = new Agent({ connections: options.connections ?? 32 });
  }

  #failure(error: FlydAnswerError | FlydUnreachableError): Error {
    return this.options.mapError ? this.options.mapError(error) : error;
  }

  async call<T>(
    baseUrl: string,
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    body?: unknown,
    options: CallOptions = {},
  ): Promise<T> {
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs;
    let answer: Awaited<ReturnType<typeof request>>;
    try {
      answer = await request(`${baseUrl}${path}`, {
        method,
        dispatcher: this.#calls,
        headers: {
          authorization: `Bearer ${this.options.token}`,
          ...(options.leaseNonce === undefined
            ? {}
            : { 'fly-machine-lease-nonce': options.leaseNonce }),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(options.stream ? { 'content-type': 'application/x-tar' } : {}),
          ...options.headers,
        },
        body: options.stream ?? (body === undefined ? undefined : JSON.stringify(body)),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: options.signal,
      });
    } catch (error) {
      throw this.#failure(new FlydUnreachableError(baseUrl, error as Error));
    }
    const parsed = (await answer.body.json().catch(() => ({}))) as T & FlydErrorBody;
    if (answer.statusCode >= 300)
      throw this.#failure(answerError(answer.statusCode, parsed, `${method} ${baseUrl}${path}`));
    return parsed;
  }

  /**
   * Opens a streamed answer of flyd (logs that follow); its body comes out as it arrives, until
   * `signal` aborts it or flyd ends it. Errors as `call`'s.
   */
  async stream(baseUrl: string, path: string, signal: AbortSignal): Promise<Readable> {
    let answer: Awaited<ReturnType<typeof request>>;
    try {
      answer = await request(`${baseUrl}${path}`, {
        method: 'GET',
        dispatcher: this.#streams,
        headers: { authorization: `Bearer ${this.options.token}` },
        headersTimeout: this.options.timeoutMs,
        bodyTimeout: 0, // a follow is quiet for as long as the machines are
        signal,
      });
    } catch (error) {
      throw this.#failure(new FlydUnreachableError(baseUrl, error as Error));
    }
    if (answer.statusCode >= 300) {
      const parsed = (await answer.body.json().catch(() => ({}))) as FlydErrorBody;
      throw this.#failure(answerError(answer.statusCode, parsed, `GET ${baseUrl}${path}`));
    }
    return answer.body;
  }

  async close(): Promise<void> {
    await Promise.all([this.#calls.close(), this.#streams.destroy()]);
  }
}

/** flyd's error body (see its errors.ts). */
interface FlydErrorBody {
  error?: string;
  code?: string;
}

function answerError(statusCode: number, body: FlydErrorBody, where: string): FlydAnswerError {
  return new FlydAnswerError(statusCode, body.code, body.error, where);
}
