import { request } from 'undici';

/** A Machines API answer that was not 2xx: the status and Fly's `{"error": ...}` text. */
export class FlapsError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'FlapsError';
  }
}

export interface Machine {
  id: string;
  state: string;
  region: string;
  private_addr?: string;
  config: Record<string, unknown>;
}

/** The few Machines API calls the launcher and the end-to-end test make, with a timeout each. */
export class FlapsClient {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
    private readonly timeoutMs = 30_000,
  ) {}

  async call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const response = await request(`${this.baseUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    });
    const text = await response.body.text();
    const parsed: unknown = text === '' ? undefined : JSON.parse(text);
    if (response.statusCode >= 300) {
      const error = (parsed as { error?: string } | undefined)?.error ?? text;
      throw new FlapsError(
        response.statusCode,
        `${method} ${path}: ${response.statusCode} ${error}`,
      );
    }
    return parsed as T;
  }

  /** Fetches an app, or undefined when it does not exist. */
  async getApp(app: string): Promise<unknown | undefined> {
    try {
      return await this.call('GET', `/v1/apps/${app}`);
    } catch (error) {
      if (error instanceof FlapsError && error.statusCode === 404) return undefined;
      throw error;
    }
  }

  createApp(app: string): Promise<unknown> {
    return this.call('POST', '/v1/apps', { app_name: app, org_slug: 'personal' });
  }

  listMachines(app: string): Promise<Machine[]> {
    return this.call('GET', `/v1/apps/${app}/machines`);
  }

  createMachine(app: string, body: Record<string, unknown>): Promise<Machine> {
    return this.call('POST', `/v1/apps/${app}/machines`, body);
  }

  startMachine(app: string, id: string): Promise<unknown> {
    return this.call('POST', `/v1/apps/${app}/machines/${id}/start`);
  }

  stopMachine(app: string, id: string): Promise<unknown> {
    return this.call('POST', `/v1/apps/${app}/machines/${id}/stop`);
  }

  destroyMachine(app: string, id: string): Promise<unknown> {
    return this.call('DELETE', `/v1/apps/${app}/machines/${id}?force=true`);
  }

  /** Long-polls until the machine reaches `state` (at most 60 s, as Fly caps it). */
  waitMachine(app: string, id: string, state: string, timeoutSeconds = 30): Promise<unknown> {
    return this.call(
      'GET',
      `/v1/apps/${app}/machines/${id}/wait?state=${state}&timeout=${timeoutSeconds}`,
    );
  }
}
