import { Agent, type Dispatcher, request } from 'undici';
import { CorrosionError } from './errors.js';
import { ndjsonEvents } from './ndjson.js';
import type { QueryAnswer, QueryEvent, Statement, TransactionAnswer, WatchEvent } from './types.js';
import { watchSubscription } from './watch.js';

export interface CorrosionClientOptions {
  /** Base URL of the agent's API, e.g. `http://127.0.0.1:8787`. */
  url: string;
  /** Bearer token, when the agent requires one. */
  token?: string;
  /** Bound on every call (for subscriptions: on the answer's headers). */
  timeoutMs?: number;
  /** Connections kept to the agent. */
  connections?: number;
}

export interface CallOptions {
  signal?: AbortSignal;
}

/** Client of the corrosion HTTP API (Corrosion's shapes): transactions, queries, subscriptions. */
export class CorrosionClient {
  readonly url: string;
  readonly timeoutMs: number;
  readonly #dispatcher: Agent;
  readonly #headers: Record<string, string>;

  constructor(options: CorrosionClientOptions) {
    this.url = options.url.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.#dispatcher = new Agent({ connections: options.connections ?? 16 });
    this.#headers = { 'content-type': 'application/json' };
    if (options.token) this.#headers.authorization = `Bearer ${options.token}`;
  }

  /** Runs the statements in one transaction on the agent; throws if any fails (none applied). */
  async transaction(
    statements: Statement[],
    options: CallOptions = {},
  ): Promise<TransactionAnswer> {
    const answer = await this.send('POST', '/v1/transactions', statements, options);
    return (await answer.body.json()) as TransactionAnswer;
  }

  /** Runs a read-only query and collects its rows. */
  async query(statement: Statement, options: CallOptions = {}): Promise<QueryAnswer> {
    const answer = await this.send('POST', '/v1/queries', statement, options);
    const result: QueryAnswer = { columns: [], rows: [] };
    for await (const event of ndjsonEvents(answer.body)) {
      if ('columns' in event) result.columns = event.columns;
      else if ('row' in event) result.rows.push(event.row[1]);
      else if ('error' in event) throw new CorrosionError('CORRO_ERR_QUERY', event.error);
    }
    return result;
  }

  /** Runs a read-only query and returns each row as an object keyed by column name. */
  async queryObjects<T = Record<string, unknown>>(
    statement: Statement,
    options: CallOptions = {},
  ): Promise<T[]> {
    const { columns, rows } = await this.query(statement, options);
    return rows.map((cells) => Object.fromEntries(columns.map((name, i) => [name, cells[i]])) as T);
  }

  /**
   * Follows a subscription until `signal` aborts: current rows, then every change. When the
   * stream breaks (agent restart, network), it re-attaches with `from=<last change id>`; if the
   * agent cannot resume, it subscribes anew and reports `reset` before the full rows.
   */
  watch(
    statement: Statement,
    onEvent: (event: WatchEvent) => void,
    options: { signal: AbortSignal; retryDelayMsMax?: number },
  ): Promise<void> {
    return watchSubscription(this, statement, onEvent, options);
  }

  /** Opens a subscription stream (POST, or GET with `from` to resume one). Internal to watch. */
  async openSubscription(
    target: { statement: Statement } | { id: string; from: number },
    signal: AbortSignal,
  ): Promise<{ id: string; events: AsyncGenerator<QueryEvent> }> {
    const answer =
      'statement' in target
        ? await this.send('POST', '/v1/subscriptions', target.statement, { signal }, 0)
        : await this.send(
            'GET',
            `/v1/subscriptions/${encodeURIComponent(target.id)}?from=${target.from}`,
            undefined,
            { signal },
            0,
          );
    const id = answer.headers['corro-query-id'];
    if (typeof id !== 'string') {
      answer.body.destroy();
      throw new CorrosionError('CORRO_ERR_PROTOCOL', 'subscription answer has no corro-query-id');
    }
    return { id, events: ndjsonEvents(answer.body) };
  }

  async close(): Promise<void> {
    await this.#dispatcher.close();
  }

  private async send(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    options: CallOptions,
    bodyTimeoutMs = this.timeoutMs,
  ): Promise<Dispatcher.ResponseData> {
    let answer: Dispatcher.ResponseData;
    try {
      answer = await request(`${this.url}${path}`, {
        method,
        dispatcher: this.#dispatcher,
        headers: this.#headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: options.signal,
        headersTimeout: this.timeoutMs,
        bodyTimeout: bodyTimeoutMs,
      });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      throw new CorrosionError(
        'CORRO_ERR_UNREACHABLE',
        `${method} ${this.url}${path}: ${(error as Error).message}`,
      );
    }
    if (answer.statusCode >= 300) {
      const text = await answer.body.text();
      let message = text;
      try {
        // Fleet's errors say `error`; a failed transaction, as Corrosion's, `results[0].error`.
        const parsed = JSON.parse(text) as { error?: string; results?: { error?: string }[] };
        message = parsed.error ?? parsed.results?.[0]?.error ?? text;
      } catch {
        // not JSON: keep the text
      }
      throw new CorrosionError(
        'CORRO_ERR_HTTP',
        `${method} ${path}: ${answer.statusCode} ${message}`,
        answer.statusCode,
      );
    }
    return answer;
  }
}
