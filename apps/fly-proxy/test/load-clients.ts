import { until } from '@fleet/service/vitest-until';
import { KeepAliveClient, type RawResponse } from './keep-alive-client.js';

/**
 * Continuous load on a proxy port: `keepAlive` clients sending request after request on one
 * connection (a new one when the proxy says `Connection: close`), and `fresh` clients opening a
 * new connection for every request. Every answer is counted: an error (a refused or reset
 * connection, a connection closed before a whole response) or a status other than 200 is a
 * dropped request. `processTags` collects the proxy process tag of each fly-request-id, to see
 * which generations answered.
 */
export class Load {
  answers = 0;
  readonly errors: string[] = [];
  readonly statuses = new Map<number, number>();
  readonly processTags = new Set<string>();
  #running = true;
  readonly #loops: Promise<void>[] = [];

  constructor(
    private readonly port: number,
    private readonly host: string,
    counts: { keepAlive: number; fresh: number },
  ) {
    for (let index = 0; index < counts.keepAlive; index++) this.#loops.push(this.#keepAlive());
    for (let index = 0; index < counts.fresh; index++) this.#loops.push(this.#fresh());
  }

  get nonOk(): number {
    return this.answers - (this.statuses.get(200) ?? 0);
  }

  /** Waits (bounded) until `more` answers came after this call. */
  async further(more: number, timeoutMs = 20_000): Promise<void> {
    const target = this.answers + more;
    await until(`${target} answers`, () => this.answers >= target, timeoutMs);
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  #record(response: RawResponse): void {
    this.answers += 1;
    this.statuses.set(response.status, (this.statuses.get(response.status) ?? 0) + 1);
    const id = response.headers['fly-request-id'] ?? '';
    this.processTags.add(id.split('-')[1]?.slice(0, 6) ?? '?');
  }

  async #keepAlive(): Promise<void> {
    let client = new KeepAliveClient(this.port);
    try {
      while (this.#running) {
        try {
          const response = await client.request(this.host);
          this.#record(response);
          if (response.headers.connection !== 'close') continue;
          await client.closed;
        } catch (error) {
          this.errors.push(`keep-alive: ${String(error)}`);
        }
        client.close();
        client = new KeepAliveClient(this.port);
      }
    } finally {
      client.close();
    }
  }

  async #fresh(): Promise<void> {
    while (this.#running) {
      const client = new KeepAliveClient(this.port);
      try {
        this.#record(await client.request(this.host));
      } catch (error) {
        this.errors.push(`new connection: ${String(error)}`);
      } finally {
        client.close();
      }
    }
  }
}
