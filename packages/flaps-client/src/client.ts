import { request } from 'undici';
import { FlapsError } from './errors.js';
import type {
  App,
  Certificate,
  ExecResult,
  LogLine,
  LogPage,
  Machine,
  Region,
  Secret,
  StoredImage,
  Volume,
  VolumeExtension,
  VolumeSnapshot,
} from './types.js';

export interface LogsQuery {
  /** One machine of the app (Fly's `instance`). */
  instance?: string;
  region?: string;
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface CallOptions {
  /** Bound on this call instead of the client's. */
  timeoutMs?: number;
  /** The nonce of a lease held on the machine: a leased machine takes changes only with it. */
  leaseNonce?: string;
}

const path = encodeURIComponent;

/**
 * The Machines API as the launcher, the `fleet` command line and fly-proxy's autoscaler call it:
 * JSON calls with a Bearer token and a timeout each; an answer that is not 2xx is a `FlapsError`
 * with the status and Fly's message (`status` 0 when flaps could not be reached).
 */
export class FlapsClient {
  constructor(
    /** flaps' base URL (`http://127.0.0.1:4280`). */
    readonly baseUrl: string,
    /** An API token (the operator's, or an organization's). */
    private readonly token: string,
    /** Bound on each call (a `wait` or `exec` adds its own timeout to it). */
    private readonly timeoutMs = 30_000,
  ) {}

  async call<T>(
    method: Method,
    route: string,
    body?: unknown,
    options: CallOptions = {},
  ): Promise<T> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    let answer: Awaited<ReturnType<typeof request>>;
    try {
      answer = await request(`${this.baseUrl}${route}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(options.leaseNonce === undefined
            ? {}
            : { 'fly-machine-lease-nonce': options.leaseNonce }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (error) {
      throw new FlapsError(
        0,
        `cannot reach the Machines API at ${this.baseUrl}: ${(error as Error).message}`,
      );
    }
    return answered<T>(answer.statusCode, await answer.body.text(), route);
  }

  async listApps(org?: string): Promise<App[]> {
    const query = org === undefined ? '' : `?org_slug=${path(org)}`;
    return (await this.call<{ apps: App[] }>('GET', `/v1/apps${query}`)).apps;
  }

  /** The app, or undefined when there is none of that name. */
  async getApp(app: string): Promise<App | undefined> {
    try {
      return await this.call<App>('GET', `/v1/apps/${path(app)}`);
    } catch (error) {
      if (error instanceof FlapsError && error.status === 404) return undefined;
      throw error;
    }
  }

  createApp(app: string, org = 'personal'): Promise<App> {
    return this.call('POST', '/v1/apps', { app_name: app, org_slug: org });
  }

  /** Destroys the app with its machines and volumes. */
  async destroyApp(app: string): Promise<void> {
    await this.call('DELETE', `/v1/apps/${path(app)}`);
  }

  listMachines(app: string, filter: { region?: string; state?: string } = {}): Promise<Machine[]> {
    const query = new URLSearchParams(filter as Record<string, string>).toString();
    return this.call('GET', `/v1/apps/${path(app)}/machines${query ? `?${query}` : ''}`);
  }

  getMachine(app: string, id: string): Promise<Machine> {
    return this.call('GET', `/v1/apps/${path(app)}/machines/${path(id)}`);
  }

  createMachine(app: string, body: Record<string, unknown>): Promise<Machine> {
    return this.call('POST', `/v1/apps/${path(app)}/machines`, body);
  }

  /** Replaces the machine's config (a new version; the machine restarts if it runs). */
  updateMachine(
    app: string,
    id: string,
    body: Record<string, unknown>,
    leaseNonce?: string,
  ): Promise<Machine> {
    return this.call('POST', `/v1/apps/${path(app)}/machines/${path(id)}`, body, { leaseNonce });
  }

  async startMachine(app: string, id: string, leaseNonce?: string): Promise<void> {
    await this.call('POST', `/v1/apps/${path(app)}/machines/${path(id)}/start`, undefined, {
      leaseNonce,
    });
  }

  async stopMachine(app: string, id: string): Promise<void> {
    await this.call('POST', `/v1/apps/${path(app)}/machines/${path(id)}/stop`);
  }

  async restartMachine(app: string, id: string): Promise<void> {
    await this.call('POST', `/v1/apps/${path(app)}/machines/${path(id)}/restart`);
  }

  async suspendMachine(app: string, id: string): Promise<void> {
    await this.call('POST', `/v1/apps/${path(app)}/machines/${path(id)}/suspend`);
  }

  /** Sends `signal` (a name such as `SIGKILL`, or a number) to the machine's process. */
  async signalMachine(app: string, id: string, signal: string): Promise<void> {
    await this.call('POST', `/v1/apps/${path(app)}/machines/${path(id)}/signal`, { signal });
  }

  /** Cordons the machine (it runs but takes no traffic), or `uncordon`s it. */
  async cordonMachine(app: string, id: string, action: 'cordon' | 'uncordon'): Promise<void> {
    await this.call('POST', `/v1/apps/${path(app)}/machines/${path(id)}/${action}`);
  }

  /** Destroys the machine; a running one only with `force` (it is killed). */
  async destroyMachine(app: string, id: string, force = false, leaseNonce?: string): Promise<void> {
    const query = force ? '?force=true' : '';
    await this.call('DELETE', `/v1/apps/${path(app)}/machines/${path(id)}${query}`, undefined, {
      leaseNonce,
    });
  }

  /**
   * Takes the machine's lease for `ttlSeconds` (Fly's leases: while it holds, changes need its
   * nonce), or refreshes the one `leaseNonce` names. Answers the nonce.
   */
  async acquireLease(
    app: string,
    id: string,
    ttlSeconds: number,
    description: string,
    leaseNonce?: string,
  ): Promise<string> {
    const answer = await this.call<{ data: { nonce: string } }>(
      'POST',
      `/v1/apps/${path(app)}/machines/${path(id)}/lease`,
      { ttl: ttlSeconds, description },
      { leaseNonce },
    );
    return answer.data.nonce;
  }

  async releaseLease(app: string, id: string, leaseNonce: string): Promise<void> {
    await this.call('DELETE', `/v1/apps/${path(app)}/machines/${path(id)}/lease`, undefined, {
      leaseNonce,
    });
  }

  /** Long-polls until the machine reaches `state` (at most 60 s, as Fly caps it). */
  async waitMachine(app: string, id: string, state: string, timeoutSeconds = 30): Promise<void> {
    await this.call(
      'GET',
      `/v1/apps/${path(app)}/machines/${path(id)}/wait?state=${path(state)}&timeout=${timeoutSeconds}`,
      undefined,
      { timeoutMs: this.timeoutMs + timeoutSeconds * 1000 },
    );
  }

  /** Runs `command` in the machine: an argv, or one command line (Fly's `cmd`, run by a shell). */
  execMachine(
    app: string,
    id: string,
    command: string[] | string,
    timeoutSeconds = 30,
  ): Promise<ExecResult> {
    return this.call(
      'POST',
      `/v1/apps/${path(app)}/machines/${path(id)}/exec`,
      typeof command === 'string'
        ? { cmd: command, timeout: timeoutSeconds }
        : { command, timeout: timeoutSeconds },
      { timeoutMs: this.timeoutMs + timeoutSeconds * 1000 },
    );
  }

  /**
   * Uploads an image archive (packed by `@fleet/images`) to the app's images, tagged
   * `name[:tag]`; idempotent by digest. Answers the stored image (`reference` is
   * `name@sha256:...`).
   */
  async uploadImage(
    app: string,
    archive: Buffer,
    image: { tag: string; digest: string },
    timeoutMs = this.timeoutMs,
  ): Promise<StoredImage> {
    const query = new URLSearchParams({ tag: image.tag, digest: image.digest });
    let answer: Awaited<ReturnType<typeof request>>;
    try {
      answer = await request(`${this.baseUrl}/v1/apps/${path(app)}/images?${query}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/gzip' },
        body: archive,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (error) {
      throw new FlapsError(
        0,
        `cannot reach the Machines API at ${this.baseUrl}: ${(error as Error).message}`,
      );
    }
    return answered<StoredImage>(
      answer.statusCode,
      await answer.body.text(),
      `/v1/apps/${path(app)}/images`,
    );
  }

  listVolumes(app: string): Promise<Volume[]> {
    return this.call('GET', `/v1/apps/${path(app)}/volumes`);
  }

  createVolume(
    app: string,
    body: { name: string; region?: string; size_gb?: number; [field: string]: unknown },
  ): Promise<Volume> {
    return this.call('POST', `/v1/apps/${path(app)}/volumes`, body);
  }

  destroyVolume(app: string, id: string): Promise<Volume> {
    return this.call('DELETE', `/v1/apps/${path(app)}/volumes/${path(id)}`);
  }

  /** Grows a volume; `needs_restart`: its machine sees the new size from its next start. */
  extendVolume(app: string, id: string, sizeGb: number): Promise<VolumeExtension> {
    return this.call<VolumeExtension>('PUT', `/v1/apps/${path(app)}/volumes/${path(id)}/extend`, {
      size_gb: sizeGb,
    });
  }

  listSnapshots(app: string, volumeId: string): Promise<VolumeSnapshot[]> {
    return this.call('GET', `/v1/apps/${path(app)}/volumes/${path(volumeId)}/snapshots`);
  }

  createSnapshot(app: string, volumeId: string): Promise<VolumeSnapshot> {
    return this.call('POST', `/v1/apps/${path(app)}/volumes/${path(volumeId)}/snapshots`);
  }

  async listCertificates(app: string): Promise<Certificate[]> {
    return (
      await this.call<{ certificates: Certificate[] }>('GET', `/v1/apps/${path(app)}/certificates`)
    ).certificates;
  }

  /** Routes `hostname` to the app; an edge issues its certificate on the first handshake. */
  addCertificate(app: string, hostname: string): Promise<Certificate> {
    return this.call('POST', `/v1/apps/${path(app)}/certificates`, { hostname });
  }

  getCertificate(app: string, hostname: string): Promise<Certificate> {
    return this.call('GET', `/v1/apps/${path(app)}/certificates/${path(hostname)}`);
  }

  async removeCertificate(app: string, hostname: string): Promise<void> {
    await this.call('DELETE', `/v1/apps/${path(app)}/certificates/${path(hostname)}`);
  }

  /** The app's secrets: name, digest and times, never a value. */
  async listSecrets(app: string): Promise<Secret[]> {
    return (await this.call<{ secrets: Secret[] }>('GET', `/v1/apps/${path(app)}/secrets`)).secrets;
  }

  /** Sets each string value and unsets each `null` in one call; the app's secrets after it. */
  async updateSecrets(app: string, values: Record<string, string | null>): Promise<Secret[]> {
    return (
      await this.call<{ secrets: Secret[] }>('POST', `/v1/apps/${path(app)}/secrets`, { values })
    ).secrets;
  }

  async regions(): Promise<Region[]> {
    return (await this.call<{ regions: Region[] }>('GET', '/v1/platform/regions')).regions;
  }

  /** One page of the app's logs, oldest first; pass `meta.next_token` back for the next. */
  logs(
    app: string,
    query: LogsQuery & { nextToken?: string; limit?: number } = {},
  ): Promise<LogPage> {
    return this.call(
      'GET',
      this.#logsRoute(app, query, { next_token: query.nextToken, limit: query.limit }),
    );
  }

  /**
   * The app's logs live: the lines the workers keep, then every new one, until `signal` aborts
   * (or the API ends the stream).
   */
  async *followLogs(app: string, query: LogsQuery, signal: AbortSignal): AsyncGenerator<LogLine> {
    let answer: Awaited<ReturnType<typeof request>>;
    try {
      answer = await request(`${this.baseUrl}${this.#logsRoute(app, query, { follow: 'true' })}`, {
        headers: { authorization: `Bearer ${this.token}` },
        headersTimeout: this.timeoutMs,
        bodyTimeout: 0, // quiet for as long as the machines are
        signal,
      });
    } catch (error) {
      if (signal.aborted) return;
      throw new FlapsError(
        0,
        `cannot reach the Machines API at ${this.baseUrl}: ${(error as Error).message}`,
      );
    }
    if (answer.statusCode >= 300) {
      const fly = (await answer.body.json().catch(() => undefined)) as FlyError | undefined;
      throw refusal(answer.statusCode, fly, `HTTP ${answer.statusCode}`, `/v1/apps/${path(app)}`);
    }
    let pending = '';
    try {
      for await (const chunk of answer.body) {
        pending += chunk.toString('utf8');
        let newline = pending.indexOf('\n');
        while (newline !== -1) {
          yield JSON.parse(pending.slice(0, newline)) as LogLine;
          pending = pending.slice(newline + 1);
          newline = pending.indexOf('\n');
        }
      }
    } catch (error) {
      if (!signal.aborted) throw error;
    }
  }

  #logsRoute(
    app: string,
    query: LogsQuery,
    extra: Record<string, string | number | undefined>,
  ): string {
    const params = new URLSearchParams();
    if (query.region !== undefined) params.set('region', query.region);
    for (const [name, value] of Object.entries(extra))
      if (value !== undefined) params.set(name, String(value));
    const base =
      query.instance === undefined
        ? `/v1/apps/${path(app)}/logs`
        : `/v1/apps/${path(app)}/machines/${path(query.instance)}/logs`;
    const search = params.toString();
    return search ? `${base}?${search}` : base;
  }
}

/** Fly's error body, with Fleet's stable code beside it. */
type FlyError = { error?: string; code?: string };

/**
 * The FlapsError of an answer that is not 2xx. A missing app's error keeps Fly's exact text, `app
 * not found` (fly-go compares it verbatim), so the client names the app of the route it asked.
 */
function refusal(
  status: number,
  fly: FlyError | undefined,
  fallback: string,
  route: string,
): FlapsError {
  const app = /^\/v1\/apps\/([^/?]+)/.exec(route)?.[1];
  const message =
    fly?.code === 'FLAPS_ERR_APP_NOT_FOUND' && app !== undefined
      ? `app ${decodeURIComponent(app)} not found`
      : (fly?.error ?? fallback);
  return new FlapsError(status, message, fly?.code);
}

/** A JSON answer, or the FlapsError of one that is not 2xx (Fly's `{"error"}` and our `code`). */
function answered<T>(status: number, text: string, route: string): T {
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (status >= 300)
    throw refusal(status, parsed as FlyError | undefined, text || `HTTP ${status}`, route);
  return parsed as T;
}
