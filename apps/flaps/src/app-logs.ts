import type { Readable, Writable } from 'node:stream';
import type { FlydClient, LogLine as WorkerLogLine } from '@fleet/flyd-client';
import type { Logger } from '@fleet/service';
import { flapsError } from './errors.js';
import type { FleetState } from './state.js';

/** Which logs a reader asked for. */
export interface LogsQuery {
  app: string;
  /** One machine of the app (Fly's `instance`). */
  instance?: string;
  region?: string;
}

/** A worker holding some of the asked-for machines. */
export interface LogWorker {
  hostId: string;
  url: string;
}

/**
 * The fields Fly's log entries carry (`attributes` of its logs API: timestamp, message, level,
 * instance, region, meta), with the stream and app beside them. stderr is `error`, stdout `info`.
 */
export function logAttributes(line: WorkerLogLine) {
  return {
    timestamp: new Date(line.timestamp).toISOString(),
    message: line.message,
    level: line.stream === 'stderr' ? 'error' : 'info',
    instance: line.machine_id,
    region: line.region,
    meta: {
      instance: line.machine_id,
      region: line.region,
      app: line.app,
      stream: line.stream,
      event: { provider: 'app' },
      ...(line.truncated ? { truncated: true } : {}),
    },
    ...(line.dropped_before === undefined ? {} : { dropped_before: line.dropped_before }),
  };
}

/** The workers to ask: the instance's, or every one holding a machine of the app (in the region). */
export async function logWorkers(state: FleetState, query: LogsQuery): Promise<LogWorker[]> {
  let hostIds: string[];
  if (query.instance !== undefined) {
    const machine = await state.machine(query.instance);
    if (!machine || machine.app !== query.app)
      throw flapsError(
        'FLAPS_ERR_MACHINE_NOT_FOUND',
        `machine ${query.instance} not found in app ${query.app}`,
      );
    hostIds = [machine.host_id];
  } else {
    hostIds = [...(await state.appMachineCounts(query.app)).keys()];
  }
  const workers: LogWorker[] = [];
  for (const hostId of hostIds) {
    const host = await state.worker(hostId);
    if (!host?.flyd_addr) continue; // a worker that never announced itself holds no lines
    if (query.region !== undefined && host.region !== query.region) continue;
    workers.push({ hostId, url: host.flyd_addr });
  }
  return workers;
}

/** flyd's query for these logs, after `after` on that worker. */
export function workerPath(query: LogsQuery, after: number, extra: string): string {
  const filter =
    query.instance === undefined
      ? `app=${encodeURIComponent(query.app)}`
      : `instance=${encodeURIComponent(query.instance)}`;
  return `/v1/logs?${filter}&after=${after}${extra}`;
}

/** How far a reader got on each worker: Fly's `next_token`, opaque to clients. */
export type LogPositions = Record<string, number>;

export function encodePositions(positions: LogPositions): string {
  return Buffer.from(JSON.stringify(positions)).toString('base64url');
}

export function decodePositions(token: string): LogPositions {
  const invalid = () => flapsError('FLAPS_ERR_BAD_REQUEST', 'next_token is not one this API gave');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid();
  for (const value of Object.values(parsed))
    if (!Number.isSafeInteger(value) || (value as number) < 0) throw invalid();
  return parsed as LogPositions;
}

/** How often a follow looks for workers that got a machine of the app since it started. */
const discoverEveryMs = 5_000;
/** The pause before following a worker again whose stream ended or failed. */
const reconnectMs = 1_000;
/** flyd cuts lines at 8 KiB; its JSON line is longer, but never this long. */
const lineCharsMax = 1024 * 1024;

/**
 * Follows an app's logs on every worker that holds its machines, writing each line as NDJSON to
 * `out` as it comes. Workers that get a machine later are found within `discoverEveryMs`; a
 * worker whose stream ends (flyd restarted) or fails is followed again from the last line seen,
 * so nothing is repeated. While `out`'s reader pushes back, every worker stream is paused: the
 * backlog then waits on flyd, which bounds it and counts what it drops.
 */
export class AppLogFollow {
  readonly #abort = new AbortController();
  readonly #followed = new Set<string>();
  readonly #paused = new Set<Readable>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly query: LogsQuery,
    /** Where to start on each worker (a `next_token`'s); 0, every kept line, elsewhere. */
    private readonly from: LogPositions,
    private readonly state: FleetState,
    private readonly flyd: FlydClient,
    private readonly out: Writable,
    private readonly logger: Logger,
  ) {
    out.on('drain', () => {
      for (const body of this.#paused) body.resume();
      this.#paused.clear();
    });
  }

  /** Starts with the workers of `workers`, then keeps looking for new ones. */
  start(workers: LogWorker[]): void {
    for (const worker of workers) this.#follow(worker);
    this.#timer = setInterval(() => void this.#discover(), discoverEveryMs);
  }

  close(): void {
    clearInterval(this.#timer);
    this.#abort.abort();
  }

  async #discover(): Promise<void> {
    try {
      for (const worker of await logWorkers(this.state, this.query)) this.#follow(worker);
    } catch (error) {
      this.logger.warn({ err: error, app: this.query.app }, 'logs follow: cannot list workers');
    }
  }

  #follow(worker: LogWorker): void {
    if (this.#followed.has(worker.hostId)) return;
    this.#followed.add(worker.hostId);
    void this.#run(worker);
  }

  async #run(worker: LogWorker): Promise<void> {
    let after = this.from[worker.hostId] ?? 0;
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      try {
        const body = await this.flyd.stream(
          worker.url,
          workerPath(this.query, after, '&follow=true'),
          signal,
        );
        await this.#pump(body, (line) => {
          after = line.seq;
        });
      } catch (error) {
        if (signal.aborted) return;
        this.logger.warn(
          { err: error, app: this.query.app, host: worker.hostId },
          'logs follow: worker stream failed; following it again',
        );
      }
      await new Promise((resolve) => setTimeout(resolve, reconnectMs));
    }
  }

  /** Copies one worker's NDJSON lines to `out` until the stream ends. */
  #pump(body: Readable, seen: (line: WorkerLogLine) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      let pending = '';
      body.setEncoding('utf8');
      body.on('data', (chunk: string) => {
        pending += chunk;
        let newline = pending.indexOf('\n');
        while (newline !== -1) {
          let line: WorkerLogLine;
          try {
            line = JSON.parse(pending.slice(0, newline)) as WorkerLogLine;
          } catch (error) {
            body.destroy(error as Error);
            return;
          }
          pending = pending.slice(newline + 1);
          newline = pending.indexOf('\n');
          seen(line);
          if (this.query.region !== undefined && line.region !== this.query.region) continue;
          if (!this.out.write(`${JSON.stringify(logAttributes(line))}\n`)) {
            body.pause();
            this.#paused.add(body);
          }
        }
        if (pending.length > lineCharsMax) body.destroy(new Error('a log line without end'));
      });
      body.once('end', resolve);
      body.once('error', reject);
    });
  }
}
