import { HttpError } from '@fleet/service';
import { Agent, request } from 'undici';
import { flapsError } from './errors.js';

/** Calls a worker's flyd with the internal token; flyd's errors come back as the same status. */
export class FlydClient {
  readonly #dispatcher = new Agent({ connections: 32 });

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

  close(): Promise<void> {
    return this.#dispatcher.close();
  }
}
