import { Pool } from 'undici';

/**
 * Why the Machines API refused or failed a call; `status` 0 when it could not be reached or did
 * not answer in time (`timedOut`).
 */
export class FlapsCallError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly timedOut = false,
  ) {
    super(message);
  }
}

/** A machine's event as the Machines API lists them (Fly's shape), the fields autostart reads. */
export interface MachineEvent {
  type: string;
  /** Milliseconds since the epoch, by the clock of the machine's worker. */
  timestamp: number;
  request?: {
    exit_event?: { exit_code?: number | null; signal?: number | null; oom_killed?: boolean };
  };
}

/**
 * The few Machines API calls the proxy makes for autostart and autostop: start, stop, suspend,
 * wait and events. One bounded connection pool, a deadline on every call, the fleet's API token.
 */
export class FlapsApi {
  readonly #pool: Pool;

  constructor(
    url: string,
    private readonly token: string | undefined,
    private readonly timeoutMs: number,
  ) {
    this.#pool = new Pool(url, {
      connections: 8,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
  }

  start(app: string, machineId: string): Promise<unknown> {
    return this.#call('POST', `/v1/apps/${app}/machines/${machineId}/start`);
  }

  stop(app: string, machineId: string): Promise<unknown> {
    return this.#call('POST', `/v1/apps/${app}/machines/${machineId}/stop`);
  }

  suspend(app: string, machineId: string): Promise<unknown> {
    return this.#call('POST', `/v1/apps/${app}/machines/${machineId}/suspend`);
  }

  /** Waits (server side, at most `seconds`) until the machine is started; false when it was not. */
  async waitStarted(app: string, machineId: string, seconds: number): Promise<boolean> {
    try {
      await this.#call(
        'GET',
        `/v1/apps/${app}/machines/${machineId}/wait?state=started&timeout=${Math.max(1, Math.ceil(seconds))}`,
      );
      return true;
    } catch (error) {
      if (error instanceof FlapsCallError && error.status === 408) return false;
      throw error;
    }
  }

  /** The machine's events (Fly's `GET …/events`). */
  async events(app: string, machineId: string): Promise<MachineEvent[]> {
    return (await this.#call(
      'GET',
      `/v1/apps/${app}/machines/${machineId}/events`,
    )) as MachineEvent[];
  }

  close(): Promise<void> {
    return this.#pool.close();
  }

  async #call(method: 'GET' | 'POST', path: string): Promise<unknown> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    let answer: Awaited<ReturnType<Pool['request']>>;
    try {
      answer = await this.#pool.request({
        method,
        path,
        headers,
        body: method === 'POST' ? '{}' : null,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const { name, code } = error as { name?: string; code?: string };
      if (name === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT')
        throw new FlapsCallError(
          0,
          `the Machines API did not answer ${method} ${path} within ${this.timeoutMs} ms`,
          true,
        );
      throw new FlapsCallError(
        0,
        `the Machines API could not be reached: ${(error as Error).message}`,
      );
    }
    const text = await answer.body.text();
    if (answer.statusCode >= 300)
      throw new FlapsCallError(
        answer.statusCode,
        `${method} ${path}: ${answer.statusCode} ${text.slice(0, 300)}`,
      );
    return text === '' ? undefined : JSON.parse(text);
  }
}
