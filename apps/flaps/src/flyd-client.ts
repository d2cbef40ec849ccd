import type { Readable } from 'node:stream';
import { HttpError } from '@fleet/service';
import { Agent, request } from 'undici';
import { flapsError } from './errors.js';

/** Calls a worker's flyd with the internal token; flyd's errors come back as the same status. */
export class FlydClient {
  readonly #dispatcher = new Agent({ connections: 32 });
  /** Streams (logs that follow) hold their connection for as long as they last: a pool apart. */
  readonly #streams = new Agent();

  constructor(
    private readonly token: string,
    private readonly timeoutMs: number,
  ) {}

  async call<T>(
    baseUrl: string,
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    body?: unknown,
    options: { timeoutMs?: number; leaseNonce?: string } = {},
  ): Promise<T> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    let answer: Awaited<ReturnType<typeof request>>;
    try {
      answer = await request(`${baseUrl}${path}`, {
        method,
        dispatcher: this.#dispatcher,
        headers: {
          ...(options.leaseNonce === undefined
            ? {}
            : { 'fly-machine-lease-nonce': options.leaseNonce }),
          authorization: `Bearer ${this.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (error) {
      throw flapsError(
        'FLAPS_ERR_WORKER_UNREACHABLE',
        `worker ${baseUrl}: ${(error as Error).message}`,
      );
    }
    const parsed = (await answer.body.json().catch(() => ({}))) as {
      error?: string;
      code?: string;
    };
    if (answer.statusCode >= 300) {
      throw new HttpError(
        answer.statusCode,
        parsed.code ?? 'FLAPS_ERR_WORKER',
        parsed.error ?? `worker answered ${answer.statusCode}`,
      );
    }
    return parsed as T;
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
        headers: { authorization: `Bearer ${this.token}` },
        headersTimeout: this.timeoutMs,
        bodyTimeout: 0, // a follow is quiet for as long as the machines are
        signal,
      });
    } catch (error) {
      throw flapsError(
        'FLAPS_ERR_WORKER_UNREACHABLE',
        `worker ${baseUrl}: ${(error as Error).message}`,
      );
    }
    if (answer.statusCode >= 300) {
      const parsed = (await answer.body.json().catch(() => ({}))) as {
        error?: string;
        code?: string;
      };
      throw new HttpError(
        answer.statusCode,
        parsed.code ?? 'FLAPS_ERR_WORKER',
        parsed.error ?? `worker answered ${answer.statusCode}`,
      );
    }
    return answer.body;
  }

  async close(): Promise<void> {
    await Promise.all([this.#dispatcher.close(), this.#streams.destroy()]);
  }
}
