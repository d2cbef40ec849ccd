import type { FlydClient } from '@fleet/flyd-client';
import type { FastifyInstance } from 'fastify';
import type { PlacementTracker } from '../placement.js';
import type { FleetState } from '../state.js';
import { leaseRoutes } from './leases.js';
import { machineCreateRoute } from './machine-create.js';
import { machineLifecycleRoutes } from './machine-lifecycle.js';
import { machineLookup } from './machine-lookup.js';
import { machineProcessRoutes } from './machine-process.js';
import { machineReadRoutes } from './machine-reads.js';
import { machineSettingsRoutes } from './machine-settings.js';
import { machineWaitRoute } from './machine-wait.js';

/** `/v1/apps/{app}/machines`: placement and forwarding to the owning worker's flyd. */
export function machineRoutes(
  app: FastifyInstance,
  state: FleetState,
  flyd: FlydClient,
  placements: PlacementTracker,
): void {
  const lookup = machineLookup(state);
  machineCreateRoute(app, state, flyd, placements);
  machineReadRoutes(app, state, flyd, lookup);
  machineLifecycleRoutes(app, flyd, lookup.owner);
  machineWaitRoute(app, flyd, lookup.owner);
  leaseRoutes(app, flyd, lookup.owner);
  machineSettingsRoutes(app, flyd, lookup.owner);
  machineProcessRoutes(app, flyd, lookup.owner);
}
