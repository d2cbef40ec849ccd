import type { AppEntry, Catalog, MachineEntry, RouteDecision } from '@fleet/catalog';
import type { Logger } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { ControlError } from './errors.js';
import type { ControlRequest } from './protocol.js';

/** What the control channel reads: the proxy's own objects, never copies. */
export interface ControlSources {
  catalog: Catalog;
  logger: Logger;
  mode: string;
  region: string;
  /** Connection counters of every listener and pool, read when asked. */
  connections(): Record<string, unknown>;
  /** This instance: serving or draining, strict second instance, supervised generation. */
  instance(): { state: string } & Record<string, unknown>;
  /** Airtime: host load and budget, each app's rate, tokens, bytes, throttled and why. */
  airtime(): unknown;
  /** Starts draining (issue 13) and answers the drain's status; the proxy exits 0 when done. */
  drain(reason: string): unknown;
  /** Asks the watchdog for a restart without dropping; throws when not run by a watchdog. */
  restart(): unknown;
}

type Command = (sources: ControlSources, args: string[]) => unknown;

const startedMs = Date.now();

/** pino's levels, plus `silent` which turns logging off. */
const logLevels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

const commands: Record<string, { args: [number, number]; run: Command }> = {
  status: { args: [0, 0], run: status },
  catalog: {
    args: [1, 1],
    run: (sources, [app]) => catalogEntry(sources.catalog, present(app, 'the app argument')),
  },
  locks: { args: [0, 0], run: locks },
  connections: { args: [0, 0], run: (sources) => sources.connections() },
  airtime: { args: [0, 0], run: (sources) => sources.airtime() },
  drain: { args: [0, 0], run: (sources) => sources.drain('proxyctl') },
  restart: { args: [0, 0], run: (sources) => sources.restart() },
  // Apps whose update was at fault (seed 002): they serve their last rows until re-read.
  quarantine: { args: [0, 0], run: (sources) => ({ quarantined: sources.catalog.quarantine() }) },
  loglevel: { args: [0, 1], run: (sources, [level]) => logLevel(sources.logger, level) },
  help: { args: [0, 0], run: () => ({ commands: Object.keys(commands) }) },
};

export const commandNames = Object.keys(commands);

/** Runs one request; a plain value when it answers at once, a promise when it waits on the catalog. */
export function runCommand(sources: ControlSources, request: ControlRequest): unknown {
  const command = commands[request.command];
  if (command === undefined) {
    throw new ControlError(
      'CONTROL_ERR_UNKNOWN_COMMAND',
      `unknown command "${request.command}" (known: ${commandNames.join(', ')})`,
    );
  }
  const [fewest, most] = command.args;
  if (request.args.length < fewest || request.args.length > most) {
    const wanted = fewest === most ? `${fewest}` : `${fewest} to ${most}`;
    throw new ControlError(
      'CONTROL_ERR_BAD_ARGUMENTS',
      `"${request.command}" takes ${wanted} argument(s), got ${request.args.length}`,
    );
  }
  return command.run(sources, request.args);
}

async function status(sources: ControlSources) {
  return {
    pid: process.pid,
    ...sources.instance(),
    uptimeSeconds: Math.round((Date.now() - startedMs) / 1000),
    mode: sources.mode,
    region: sources.region,
    logLevel: sources.logger.level,
    memoryRssBytes: process.memoryUsage.rss(),
    catalog: await sources.catalog.stats(),
  };
}

function locks(sources: ControlSources) {
  // The merged view first (who holds or waits, the latest writer), then each lock on its own.
  return { catalog: sources.catalog.lock.snapshot(), each: sources.catalog.locks() };
}

function logLevel(logger: Logger, level: string | undefined) {
  if (level === undefined) return { level: logger.level };
  if (!logLevels.includes(level)) {
    throw new ControlError(
      'CONTROL_ERR_BAD_LEVEL',
      `unknown log level "${level}" (known: ${logLevels.join(', ')})`,
    );
  }
  const previous = logger.level;
  logger.level = level;
  logger.warn({ event: 'log_level_changed', previous, level }, 'log level changed');
  return { level, previous };
}

async function catalogEntry(catalog: Catalog, app: string) {
  let entry: AppEntry | undefined;
  let decision: RouteDecision;
  try {
    entry = await catalog.app(app);
    decision = await catalog.route(app);
  } catch (error) {
    throw new ControlError(
      'CONTROL_ERR_NO_APP',
      `app "${app}" could not be loaded: ${String(error)}`,
    );
  }
  if (entry === undefined) {
    throw new ControlError('CONTROL_ERR_NO_APP', `the catalog holds no app "${app}"`);
  }
  return {
    app: entry.name,
    known: entry.known,
    org: entry.org,
    network: entry.network,
    hostnames: entry.hostnames,
    machines: entry.machines.map(machineView),
    route: routeView(decision),
  };
}

/** A machine with its load and, per service, the band that load puts it in. */
function machineView(machine: MachineEntry) {
  return {
    ...(machine.toJSON() as Record<string, unknown>),
    remoteLoad: machine.remoteLoad,
    backhaulAddr: machine.backhaulAddr,
    services: machine.services.map((service) => ({
      internalPort: service.internalPort,
      protocol: service.protocol,
      concurrency: service.concurrency,
      // Catalog's bands (route.ts), by this proxy's own load: 0 under soft, 1 under hard, 2 full.
      band:
        machine.load < service.concurrency.softLimit
          ? 0
          : machine.load < service.concurrency.hardLimit
            ? 1
            : 2,
    })),
  };
}

/** What routing would do now: the candidates best first with their band (remote load counted). */
function routeView(decision: RouteDecision) {
  if (decision.kind === 'ok') {
    return {
      kind: decision.kind,
      candidates: decision.candidates.map((candidate) => ({
        machine: candidate.machine.id,
        band: candidate.band,
        rttMs: candidate.rttMs,
        local: candidate.local,
      })),
    };
  }
  if (decision.kind === 'no-machine') {
    return { kind: decision.kind, reason: decision.reason, saturated: decision.saturated };
  }
  return { kind: decision.kind };
}
