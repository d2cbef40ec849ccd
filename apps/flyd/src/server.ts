import {
  authorizationMatches,
  createHttpServer,
  type HttpLimits,
  type Logger,
  type MetricsExport,
} from '@fleet/service';
import type { FastifyInstance } from 'fastify';
import { flydError } from './errors.js';
import type { LogFeed } from './logs/feed.js';
import { leaseRoutes } from './routes/leases.js';
import { logRoutes } from './routes/logs.js';
import { machineProcessRoutes } from './routes/machine-process.js';
import { machineSettingsRoutes } from './routes/machine-settings.js';
import { type MachineRouteDeps, machineRoutes } from './routes/machines.js';
import { migrateRoutes } from './routes/migrate.js';
import { runRoutes } from './routes/runs.js';
import { volumeRoutes } from './routes/volumes.js';
import type { VolumeService } from './volumes/service.js';

/** flyd's HTTP API: every /v1 route needs the internal bearer token. */
export function createFlydServer(
  logger: Logger,
  metrics: MetricsExport,
  token: string,
  deps: MachineRouteDeps & { volumes: VolumeService; logs: LogFeed },
  limits: HttpLimits,
): FastifyInstance {
  const app = createHttpServer({ logger, metrics, limits });
  app.addHook('onRequest', async (request) => {
    if (!request.url.startsWith('/v1/')) return;
    if (!authorizationMatches(request.headers.authorization, token)) {
      throw flydError('FLYD_ERR_UNAUTHORIZED', 'missing or wrong bearer token');
    }
  });
  machineRoutes(app, deps);
  leaseRoutes(app, deps.machines, deps.leases);
  machineSettingsRoutes(app, deps);
  machineProcessRoutes(app, deps);
  logRoutes(app, deps.logs, deps.machines);
  runRoutes(app, deps.engine);
  volumeRoutes(app, deps.volumes, deps.machines);
  migrateRoutes(app, deps.machines, deps.leases);
  return app;
}
