export { Catalog, type CatalogOptions, type CatalogStats } from './catalog.js';
export {
  BadRowError,
  type FollowedTable,
  followedTables,
  type MachineEntry,
  type ServiceEntry,
} from './rows.js';
export { type RouteDecision, RoutingTable } from './table.js';
