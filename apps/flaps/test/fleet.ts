import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ServerProcess, startServerProcess } from '@fleet/service';

const here = dirname(fileURLToPath(import.meta.url));
const main = (app: string) => join(here, '..', '..', app, 'dist', 'main.js');

/** The operator token every test fleet's flaps takes (`--token`). */
export const operatorToken = 'api-t0k';
const flydToken = 'flyd-t0k';

/** A machine config of the `hello` image (infra/images) serving HTTP on its `PORT`. */
export const hello = {
  image: 'hello',
  services: [{ protocol: 'tcp', internal_port: 8080, ports: [{ port: 80, handlers: ['http'] }] }],
};

export interface CallOptions {
  /** The whole `Authorization` header; the operator's Bearer token by default, null for none. */
  auth?: string | null;
  /** Extra request headers (`fly-machine-lease-nonce`, a content type...). */
  headers?: Record<string, string>;
  /** A raw body sent as is, instead of `JSON.stringify(body)`. */
  rawBody?: string;
  /** Bound on the whole call (default 70 s: a `wait` may take 60). */
  timeoutMs?: number;
}

export interface Answer {
  status: number;
  headers: Headers;
  /** The parsed JSON body; null when the body is empty. */
  // biome-ignore lint/suspicious/noExplicitAny: tests read whatever shape the API answered.
  body: any;
}

export interface Fleet {
  /** flaps' base URL. */
  api: string;
  call(method: string, path: string, body?: unknown, options?: CallOptions): Promise<Answer>;
  /** The processes by name (`corrosion`, `flyd-<hostId>`, `flaps`), to stop one in a test. */
  processes: Record<string, ServerProcess>;
  /** Mints an organization token through `POST /v1/tokens` (as the operator). */
  mintToken(org: string): Promise<string>;
  stop(): Promise<void>;
}

export interface FleetOptions {
  /** Worker hosts (one flyd each); default one in `ams`. */
  workers?: { hostId: string; region: string }[];
}

/**
 * Starts a corrosion agent, one flyd per worker and flaps as real processes on 127.0.0.1 with
 * ephemeral ports (the built `dist/` of each app: run `npm run build` after changing `src/`).
 * One fleet serves a whole test file; `stop()` stops them in reverse order.
 */
export async function startFleet(options: FleetOptions = {}): Promise<Fleet> {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-contract-'));
  const env = { ...process.env, LOG_LEVEL: 'warn' };
  const servers: ServerProcess[] = [];
  const processes: Record<string, ServerProcess> = {};
  const start = async (app: string, args: string[], name = app) => {
    const server = await startServerProcess({
      command: process.execPath,
      args: [main(app), ...args],
      listeners: ['api'],
      env,
    });
    servers.push(server);
    processes[name] = server;
    return server.urls.api!;
  };
  const stop = async () => {
    for (const server of servers.reverse()) await server.stop();
  };
  try {
    const corrosion = await start('corrosion', [
      ...['agent', '--db', join(dir, 'corrosion.db'), '--api-addr', '127.0.0.1:0'],
    ]);
    const workers = options.workers ?? [{ hostId: 'w1', region: 'ams' }];
    await Promise.all(
      workers.map((worker) =>
        start(
          'flyd',
          [
            ...['--listen', '127.0.0.1:0', '--data-dir', join(dir, `flyd-${worker.hostId}`)],
            ...['--corrosion-url', corrosion, '--token', flydToken],
            ...['--host-id', worker.hostId, '--region', worker.region],
          ],
          `flyd-${worker.hostId}`,
        ),
      ),
    );
    const api = await start('flaps', [
      ...['--listen', '127.0.0.1:0', '--corrosion-url', corrosion],
      ...['--token', operatorToken, '--flyd-token', flydToken],
    ]);
    const call: Fleet['call'] = async (method, path, body, callOptions = {}) => {
      const auth = callOptions.auth === undefined ? `Bearer ${operatorToken}` : callOptions.auth;
      const payload =
        callOptions.rawBody ?? (body === undefined ? undefined : JSON.stringify(body));
      const response = await fetch(`${api}${path}`, {
        method,
        headers: {
          ...(auth === null ? {} : { authorization: auth }),
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
          ...callOptions.headers,
        },
        body: payload,
        signal: AbortSignal.timeout(callOptions.timeoutMs ?? 70_000),
      });
      const text = await response.text();
      return {
        status: response.status,
        headers: response.headers,
        body: text === '' ? null : JSON.parse(text),
      };
    };
    const mintToken = async (org: string) => {
      const minted = await call('POST', '/v1/tokens', { org_slug: org, name: `${org} tests` });
      if (minted.status !== 201) throw new Error(`minting a token: ${JSON.stringify(minted)}`);
      return minted.body.token as string;
    };
    return { api, call, processes, mintToken, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
