import type { Readable } from 'node:stream';
import { request } from 'undici';

/** An answer of another worker's flyd that is not a success: its status and error code. */
export class PeerError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'PeerError';
  }
}

/**
 * Calls another worker's flyd (a migrate's target) with the internal token, which every flyd of
 * a fleet shares (flaps presents the same one to all). Every call has a timeout.
 */
export class PeerClient {
  constructor(
    private readonly token: string,
    private readonly timeoutMs: number,
  ) {}

  async call<T>(
    baseUrl: string,
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    body?: unknown,
    options: { timeoutMs?: number; headers?: Record<string, string>; stream?: Readable } = {},
  ): Promise<T> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const answer = await request(`${baseUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(options.stream ? { 'content-type': 'application/x-tar' } : {}),
        ...options.headers,
      },
      body: options.stream ?? (body === undefined ? undefined : JSON.stringify(body)),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const parsed = (await answer.body.json().catch(() => ({}))) as {
      error?: string;
      code?: string;
    };
    if (answer.statusCode >= 300) {
      throw new PeerError(
        answer.statusCode,
        parsed.code,
        `${method} ${baseUrl}${path}: ${answer.statusCode} ${parsed.error ?? ''}`.trim(),
      );
    }
    return parsed as T;
  }
}
