export { Catalog, type CatalogStats } from './catalog.js';
export {
  BadRowError,
  CatalogError,
  type CatalogErrorCode,
  CatalogErrorCodes,
} from './errors.js';
export type { TableFreshness } from './freshness.js';
export {
  AppEntry,
  Certificate,
  type Concurrency,
  type ConcurrencyType,
  defaultConcurrency,
  type HostEntry,
  MachineEntry,
  type PortSpec,
  type RegionEntry,
  type ServiceSpec,
} from './model.js';
export type { CatalogMode, CatalogOptions } from './options.js';
export type { QuarantineEntry, QuarantineReason } from './quarantine.js';
export type { Band, Candidate, RouteDecision, RouteOptions } from './route.js';
export { type FollowedTable, followedTables } from './rows.js';
export { distanceKm } from './topology.js';
