import { type ChildProcess, fork } from 'node:child_process';
import type { ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { DeadlineQueue } from '@fleet/service/deadline-queue';
import { corroError } from '../errors.js';
import type { QueryAnswer, QueryLimits, QueryOutcome } from './messages.js';

const processPath = fileURLToPath(new URL('./query-process.js', import.meta.url));
/** A query process idle this long exits; the next query starts one again. */
const idleMs = 60_000;
/** Past its time bound a query gets this long to stop by itself before its process is killed. */
const graceMs = 1_000;

export interface QueryProcessesOptions {
  /** Queries answered at once (one process each). */
  processesMax: number;
  /** Queries waiting for a process at most; past it, 503. */
  waitersMax: number;
  limits: QueryLimits;
}

interface Job {
  id: number;
  response: ServerResponse;
  /** `stopped`: the process ended the query itself (else it is mid-query and is killed). */
  finish(outcome: QueryOutcome | 'client_gone', stopped: boolean): void;
}

interface Runner {
  child: ChildProcess;
  /** Its connection is open (it said so). */
  opened: boolean;
  /** Open and not being killed: it may be handed a query. */
  ready: boolean;
  job: Job | undefined;
  idle: NodeJS.Timeout | undefined;
  /** Settles once the process is gone. */
  exited: Promise<void>;
}

/**
 * Runs `/v1/queries` in processes of their own (`query-process.ts`), each with a read-only
 * connection: SQLite cannot be interrupted from JavaScript, so a query run on the agent's own
 * connection held its event loop — writes, gossip, sync and health — for as long as it ran, and a
 * query that never ends (`WITH RECURSIVE` without a bound) for good; a worker thread cannot be
 * stopped inside SQLite either, and keeps the process from exiting. A process that has not
 * finished its query by the time bound (plus a second) is killed and its client told; one the
 * client leaves is killed at once. Processes start on demand and exit after a minute idle.
 */
export class QueryProcesses {
  readonly #dbPath: string;
  readonly #options: QueryProcessesOptions;
  readonly #runners = new Set<Runner>();
  readonly #waiters: DeadlineQueue<Runner>;
  #nextId = 1;
  #closed = false;

  constructor(dbPath: string, options: QueryProcessesOptions) {
    this.#dbPath = dbPath;
    this.#options = options;
    const busy = (why: string) =>
      corroError('CORRO_ERR_OVERLOADED', `every query process is busy: ${why}`);
    this.#waiters = new DeadlineQueue(
      { waitersMax: options.waitersMax, timeoutMs: options.limits.timeMs },
      {
        full: (waiting) => busy(`${waiting} queries wait already`),
        timedOut: (ms) => busy(`none was free within ${ms} ms`),
      },
    );
  }

  /**
   * Runs `sql` in a query process; `open()` starts the answer once one is free (a wait past the
   * time bound, or past `waitersMax` waiters, is a 503 before anything is sent). Resolves with how
   * the answer ended.
   */
  async run(
    sql: string,
    params: unknown[] | Record<string, unknown>,
    open: () => ServerResponse,
  ): Promise<QueryOutcome | 'client_gone'> {
    const runner = await this.#acquire();
    const response = open();
    return new Promise((resolve) => {
      const id = this.#nextId++;
      const limits = this.#options.limits;
      const deadline = setTimeout(() => {
        const error = `query stopped: longer than ${limits.timeMs} ms (--query-time-ms)`;
        response.end(`${JSON.stringify({ error })}\n`);
        job.finish('cut', false);
      }, limits.timeMs + graceMs);
      const gone = () => job.finish('client_gone', false);
      const job: Job = {
        id,
        response,
        finish: (outcome, stopped) => {
          if (runner.job !== job) return;
          runner.job = undefined;
          clearTimeout(deadline);
          response.off('close', gone);
          if (stopped) this.#release(runner);
          else this.#kill(runner);
          resolve(outcome);
        },
      };
      runner.job = job;
      response.once('close', gone);
      runner.child.send({ id, sql, params, limits }, (error) => {
        if (error === null) return;
        response.end(
          `${JSON.stringify({ error: `the query process failed: ${error.message}` })}\n`,
        );
        job.finish('error', false);
      });
    });
  }

  /** Stops every process and refuses the queries still waiting. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#waiters.rejectAll(corroError('CORRO_ERR_OVERLOADED', 'the agent is stopping'));
    const runners = [...this.#runners];
    for (const runner of runners) this.#kill(runner);
    await Promise.all(runners.map((runner) => runner.exited));
  }

  #acquire(): Promise<Runner> {
    if (this.#closed)
      return Promise.reject(corroError('CORRO_ERR_OVERLOADED', 'the agent is stopping'));
    for (const runner of this.#runners) {
      if (runner.ready && runner.job === undefined) {
        clearTimeout(runner.idle);
        return Promise.resolve(runner);
      }
    }
    if (this.#runners.size < this.#options.processesMax) this.#start();
    return this.#waiters.wait();
  }

  /** A process that finished its query: to the longest waiter, or idle. */
  #release(runner: Runner): void {
    const waiter = this.#waiters.take();
    if (waiter !== undefined) {
      waiter.resolve(runner);
      return;
    }
    runner.idle = setTimeout(() => this.#kill(runner), idleMs);
    runner.idle.unref();
  }

  #start(): void {
    const child = fork(processPath, [this.#dbPath], {
      execArgv: [],
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    let exited = () => {};
    const runner: Runner = {
      child,
      opened: false,
      ready: false,
      job: undefined,
      idle: undefined,
      exited: new Promise((resolve) => {
        exited = resolve;
      }),
    };
    this.#runners.add(runner);
    child.on('message', (answer: QueryAnswer) => {
      if ('ready' in answer) {
        runner.opened = true;
        runner.ready = true;
        this.#release(runner);
        return;
      }
      const job = runner.job;
      if (job === undefined || answer.id !== job.id) return;
      if (job.response.destroyed) {
        job.finish('client_gone', answer.end !== undefined);
        return;
      }
      if (answer.end === undefined) job.response.write(answer.text);
      else {
        job.response.end(answer.text);
        job.finish(answer.end, true);
      }
    });
    const gone = (why: string) => {
      if (!this.#runners.delete(runner)) return;
      exited();
      clearTimeout(runner.idle);
      const job = runner.job;
      if (job !== undefined) {
        if (!job.response.writableEnded) {
          const error = `the query process ended (${why})`;
          job.response.end(`${JSON.stringify({ error })}\n`);
        }
        job.finish('error', false);
      }
      if (this.#closed || this.#waiters.length === 0) return;
      // One that never opened the database would fail again: its waiters are told instead.
      if (runner.opened) this.#start();
      else
        this.#waiters.rejectAll(
          corroError('CORRO_ERR_OVERLOADED', 'a query process could not start (see the agent log)'),
        );
    };
    child.once('exit', (code, signal) => gone(signal ?? `code ${code}`));
    // A process that could not be started has no exit to come; a broken channel's exit follows.
    child.on('error', (error) => {
      if (child.pid === undefined) gone(error.message);
    });
  }

  #kill(runner: Runner): void {
    clearTimeout(runner.idle);
    runner.ready = false; // never handed a query again, though its exit is still to come
    runner.child.kill('SIGKILL');
  }
}
