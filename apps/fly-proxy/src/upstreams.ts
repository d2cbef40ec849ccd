import { Pool } from 'undici';

export interface UpstreamLimits {
  connectionsPerUpstream: number;
  upstreamsMax: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
}

/**
 * One undici Pool per machine address, with bounded connections each, and a bounded number of
 * pools: the least recently used pool is closed when a new address would pass the bound.
 */
export class Upstreams {
  readonly #pools = new Map<string, Pool>();

  constructor(private readonly limits: UpstreamLimits) {}

  get(address: string): Pool {
    const existing = this.#pools.get(address);
    if (existing) {
      this.#pools.delete(address);
      this.#pools.set(address, existing); // most recently used last
      return existing;
    }
    if (this.#pools.size >= this.limits.upstreamsMax) {
      const [oldest, pool] = this.#pools.entries().next().value as [string, Pool];
      this.#pools.delete(oldest);
      void pool.close();
    }
    const pool = new Pool(`http://${address}`, {
      connections: this.limits.connectionsPerUpstream,
      connect: { timeout: this.limits.connectTimeoutMs },
      headersTimeout: this.limits.headersTimeoutMs,
      bodyTimeout: this.limits.bodyTimeoutMs,
    });
    this.#pools.set(address, pool);
    return pool;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((pool) => pool.close()));
    this.#pools.clear();
  }
}
