import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sampleImagesDir } from '@fleet/sample-images';
import { type ServerProcess, serverMain, startServerProcess, unmountUnder } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { vi } from 'vitest';

const main = (app: string) => serverMain(`@fleet/${app}`);

/** The operator token every test fleet's flaps takes (`FLEET_API_TOKEN`). */
export const operatorToken = 'api-t0k';
/** The internal token between flaps and flyd (`FLYD_TOKEN` of both). */
export const flydToken = 'flyd-t0k';
/** Bound on the wait for placement to see every worker (flyd announces itself after it listens). */
const workersReadyMsMax = 10_000;

/** A machine config of the `hello` image (@fleet/sample-images) serving HTTP on its `PORT`. */
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

type Call = (
  method: string,
  path: string,
  body?: unknown,
  options?: CallOptions,
) => Promise<Answer>;

export interface Worker {
  /** flyd's base URL on this worker. */
  url: string;
  /** flyd's `--data-dir` (its machines, volumes and snapshots live under it). */
  dataDir: string;
}

export interface Fleet {
  /** flaps' base URL. */
  api: string;
  /** The corrosion agent's base URL, to read the cluster's rows directly. */
  corrosion: string;
  /** The edge fly-proxy's proxy URL, when the fleet was started with `edgeProxy`. */
  proxy: string | undefined;
  /** The workers by host id. */
  workers: Record<string, Worker>;
  /** Calls flaps, as the operator unless `options.auth` says otherwise. */
  call: Call;
  /** Calls one worker's flyd API directly, with the internal token by default. */
  flyd(hostId: string, ...request: Parameters<Call>): Promise<Answer>;
  /** The processes by name (`corrosion`, `flyd-<hostId>`, `fly-proxy`, `flaps`), to stop one in a test. */
  processes: Record<string, ServerProcess>;
  /** Mints an organization token through `POST /v1/tokens` (as the operator). */
  mintToken(org: string): Promise<string>;
  /** Stops every process the fleet started (and any a test stopped already) and removes its files. */
  stop(): Promise<void>;
}

export interface FleetOptions {
  /** Worker hosts (one flyd each); default one in `ams`. */
  workers?: { hostId: string; region: string }[];
  /** Extra flags every flyd takes (`--memory-mb`, `--stop-timeout-ms`...). */
  flydArgs?: string[];
  /** Extra flags flaps takes (`--in-flight-max`...). */
  flapsArgs?: string[];
  /** Also start an edge fly-proxy routing `<app>.<domain>` from this region. */
  edgeProxy?: { domain: string; region: string };
}

/** One JSON call to `base` with a Bearer `token` unless `options.auth` overrides it. */
async function request(
  base: string,
  token: string,
  ...[method, path, body, options = {}]: Parameters<Call>
): Promise<Answer> {
  const auth = options.auth === undefined ? `Bearer ${token}` : options.auth;
  const payload = options.rawBody ?? (body === undefined ? undefined : JSON.stringify(body));
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(auth === null ? {} : { authorization: auth }),
      ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
      ...options.headers,
    },
    body: payload,
    signal: AbortSignal.timeout(options.timeoutMs ?? 70_000),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text === '' ? null : JSON.parse(text),
  };
}

/** Resolves once flaps' placement sees `count` ready workers; throws after `workersReadyMsMax`. */
async function waitForWorkers(call: Call, count: number): Promise<void> {
  await vi.waitFor(
    async () => {
      const answer = await call('GET', '/v1/platform/regions', undefined, { timeoutMs: 5_000 });
      const regions = (answer.body?.regions ?? []) as { workers: number }[];
      const seen = regions.reduce((sum, region) => sum + region.workers, 0);
      if (seen !== count) throw new Error(`placement sees ${seen} of ${count} workers`);
    },
    { timeout: workersReadyMsMax, interval: 50 },
  );
}

/**
 * Starts a corrosion agent, flaps (keeping images), one flyd per worker (pulling from that flaps),
 * optionally an edge fly-proxy, as real
 * processes on 127.0.0.1 with ephemeral ports (the built `dist/` of each app: run `npm run build`
 * after changing `src/`), and resolves once placement sees every worker. One fleet serves a whole
 * test file; `stop()` stops them in reverse order.
 */
export async function startFleet(options: FleetOptions = {}): Promise<Fleet> {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-test-'));
  chmodSync(dir, 0o711); // as a worker's: its machines, each a user of its own, pass through
  // Tokens travel in the environment, never on a command line (`ps` shows those to anyone).
  const env = {
    ...process.env,
    LOG_LEVEL: 'warn',
    FLEET_API_TOKEN: operatorToken,
    FLYD_TOKEN: flydToken,
  };
  const servers: ServerProcess[] = [];
  const processes: Record<string, ServerProcess> = {};
  const start = async (app: string, args: string[], name = app, listeners = ['api']) => {
    const server = await startServerProcess({
      command: process.execPath,
      args: [main(app), ...args],
      listeners,
      env,
      // Generous: ten flyds start at once in the spread test, on a machine other suites share
      // (the 15 s default ran out at a load average of 10).
      startTimeoutMs: 60_000,
    });
    servers.push(server);
    processes[name] = server;
    return present(server.urls[present(listeners[0], 'a listener')], `${name}'s URL`);
  };
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      try {
        for (const server of [...servers].reverse()) await server.stop();
      } finally {
        unmountUnder(dir); // volume disks a flyd killed at its stop's bound kept mounted
        rmSync(dir, { recursive: true, force: true });
      }
    })();
    return stopped;
  };
  try {
    const corrosion = await start('corrosion', [
      ...['agent', '--db', join(dir, 'corrosion.db'), '--api-addr', '127.0.0.1:0'],
    ]);
    // One fleet key for flaps (seals secrets) and every flyd (opens them at a machine's start).
    const fleetKey = join(dir, 'fleet.key');
    writeFileSync(fleetKey, randomBytes(32).toString('hex'), { mode: 0o600 });
    // flaps before the workers: each flyd is told where to pull images from (--flaps-url).
    const api = await start('flaps', [
      ...['--listen', '127.0.0.1:0', '--corrosion-url', corrosion, '--fleet-key-file', fleetKey],
      ...['--images-dir', join(dir, 'flaps-images'), ...(options.flapsArgs ?? [])],
    ]);
    const workers: Record<string, Worker> = {};
    await Promise.all(
      (options.workers ?? [{ hostId: 'w1', region: 'ams' }]).map(async ({ hostId, region }) => {
        const dataDir = join(dir, `flyd-${hostId}`);
        const flydArgs = [
          ...['--listen', '127.0.0.1:0', '--data-dir', dataDir],
          ...['--corrosion-url', corrosion, '--stop-machines-on-exit'], // none left behind
          ...['--flaps-url', api, '--images-dir', sampleImagesDir, '--fleet-key-file', fleetKey],
          ...['--host-id', hostId, '--region', region, ...(options.flydArgs ?? [])],
        ];
        workers[hostId] = { url: await start('flyd', flydArgs, `flyd-${hostId}`), dataDir };
      }),
    );
    const edge = options.edgeProxy;
    const proxy =
      edge &&
      (await start(
        'fly-proxy',
        [
          ...['--mode', 'edge', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'],
          ...['--corrosion-url', corrosion, '--domain', edge.domain, '--region', edge.region],
        ],
        'fly-proxy',
        ['proxy', 'admin'],
      ));
    const call: Call = (...args) => request(api, operatorToken, ...args);
    const flyd: Fleet['flyd'] = (hostId, ...args) => {
      const worker = workers[hostId];
      if (worker === undefined) throw new Error(`no worker ${hostId} in this fleet`);
      return request(worker.url, flydToken, ...args);
    };
    const mintToken = async (org: string) => {
      const minted = await call('POST', '/v1/tokens', { org_slug: org, name: `${org} tests` });
      if (minted.status !== 201) throw new Error(`minting a token: ${JSON.stringify(minted)}`);
      return minted.body.token as string;
    };
    await waitForWorkers(call, Object.keys(workers).length);
    return { api, corrosion, proxy, workers, call, flyd, processes, mintToken, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
