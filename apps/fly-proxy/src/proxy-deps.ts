import type { Catalog } from '@fleet/catalog';
import type { Logger } from '@fleet/service';
import type { Autostarter } from './autoscale/autostart.js';
import type { Autostopper } from './autoscale/autostop.js';
import type { UpstreamPools } from './http1/upstream-pools.js';
import type { ProxyMetrics } from './metrics.js';
import type { Upstreams } from './upstreams.js';

/** What both relays (HTTP/1.1 on raw sockets, HTTP/2 through Node's compat API) work with. */
export interface ProxyDeps {
  catalog: Catalog;
  /** undici pools, for requests that came over HTTP/2. */
  upstreams: Upstreams;
  /** Raw keep-alive connections, for requests that came over HTTP/1.x. */
  pools: UpstreamPools;
  region: string;
  metrics: ProxyMetrics;
  logger: Logger;
  /** With `--flaps-url`: Fly's autostart and autostop through the Machines API. */
  autostart?: Autostarter;
  autostop?: Autostopper;
}
