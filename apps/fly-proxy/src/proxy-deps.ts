import type { Catalog } from '@fleet/catalog';
import type { Logger } from '@fleet/service';
import type { Autostarter } from './autoscale/autostart.js';
import type { Autostopper } from './autoscale/autostop.js';
import type { BackhaulSessions } from './backhaul-session.js';
import type { UpstreamPools } from './http1/upstream-pools.js';
import type { ProxyMetrics } from './metrics.js';

/** What the relay (HTTP/1.x connections and HTTP/2 streams alike) works with. */
export interface ProxyDeps {
  catalog: Catalog;
  /** Keep-alive connections to machines, for every request (HTTP/1.x and HTTP/2). */
  pools: UpstreamPools;
  /** With `--host-id` (edge mode): one HTTP/2 session per backhaul of another host. */
  backhauls?: BackhaulSessions;
  region: string;
  metrics: ProxyMetrics;
  logger: Logger;
  /** With `--flaps-url`: Fly's autostart and autostop through the Machines API. */
  autostart?: Autostarter;
  autostop?: Autostopper;
}
