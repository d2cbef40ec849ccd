import { BadRowError } from './errors.js';
import {
  type Concurrency,
  type ConcurrencyType,
  defaultConcurrency,
  type PortSpec,
} from './model.js';

/** The corrosion columns the Catalog follows, per table, in SELECT order. */
export const followedTables = {
  apps: ['name', 'org', 'network'],
  app_hostnames: ['hostname', 'app'],
  machines: ['id', 'app', 'state', 'private_addr', 'region', 'host_id', 'instance_id'],
  services: [
    'machine_id',
    'internal_port',
    'app',
    'protocol',
    'ports',
    'handlers',
    'concurrency',
    'autostart',
    'autostop',
    'min_machines_running',
  ],
  health_checks: ['machine_id', 'name', 'status'],
  certificates: ['hostname', 'app', 'cert_pem', 'sealed_key', 'not_after'],
  hosts: ['id', 'region', 'role', 'backhaul_addr', 'status'],
  regions: ['code', 'name', 'lat', 'lon'],
} as const;

export type FollowedTable = keyof typeof followedTables;

/** Tables kept per app (sharded, lazily loaded); the others are global and always followed. */
export const appTables = [
  'apps',
  'app_hostnames',
  'machines',
  'services',
  'health_checks',
  'certificates',
] as const satisfies readonly FollowedTable[];
export const globalTables = ['hosts', 'regions'] as const satisfies readonly FollowedTable[];

export function text(cells: unknown[], index: number, table: string, column: string): string {
  const value = cells[index];
  if (typeof value !== 'string') {
    // A certificate's cells may hold key material: never quote them in an error.
    const got = table === 'certificates' ? typeof value : describe(value);
    throw new BadRowError(`${table}.${column} must be text, got ${got}`);
  }
  return value;
}

function optionalText(cells: unknown[], index: number): string | null {
  const value = cells[index];
  return typeof value === 'string' && value !== '' ? value : null;
}

function integer(cells: unknown[], index: number, table: string, column: string): number {
  const value = cells[index];
  if (typeof value !== 'number' || !Number.isInteger(value))
    throw new BadRowError(`${table}.${column} must be an integer, got ${describe(value)}`);
  return value;
}

function describe(value: unknown): string {
  const shown = JSON.stringify(value) ?? String(value);
  return shown.length > 60 ? `${shown.slice(0, 60)}…` : shown;
}

/** The app a row belongs to (`''` for health_checks, which name only a machine). */
export function appOf(table: FollowedTable, cells: unknown[]): string {
  const index =
    table === 'apps' ? 0 : table === 'services' ? 2 : table === 'health_checks' ? -1 : 1;
  const value = index < 0 ? '' : cells[index];
  return typeof value === 'string' ? value : '';
}

export interface MachineRow {
  id: string;
  app: string;
  state: string;
  privateAddr: string | null;
  region: string;
  hostId: string;
  instanceId: string;
}

export function machineFromCells(cells: unknown[]): MachineRow {
  return {
    id: text(cells, 0, 'machines', 'id'),
    app: text(cells, 1, 'machines', 'app'),
    state: text(cells, 2, 'machines', 'state'),
    privateAddr: optionalText(cells, 3),
    region: text(cells, 4, 'machines', 'region'),
    hostId: text(cells, 5, 'machines', 'host_id'),
    instanceId: text(cells, 6, 'machines', 'instance_id'),
  };
}

export interface ServiceRow {
  machineId: string;
  app: string;
  internalPort: number;
  /** Identifies the configuration (every column but machine_id and app), for interning. */
  key: string;
  protocol: string;
  ports: PortSpec[];
  handlers: string[];
  concurrency: Concurrency;
  autostart: boolean;
  autostop: string;
  minMachinesRunning: number;
}

/** Parses a services row; `ports`, `handlers` and `concurrency` are JSON text. */
export function serviceFromCells(cells: unknown[]): ServiceRow {
  const internalPort = integer(cells, 1, 'services', 'internal_port');
  const ports = portsOf(json(cells, 4, 'ports', '[]'));
  const handlerColumn = json(cells, 5, 'handlers', '[]');
  const handlers = new Set<string>(
    Array.isArray(handlerColumn) ? handlerColumn.filter((h) => typeof h === 'string') : [],
  );
  for (const port of ports) for (const handler of port.handlers) handlers.add(handler);
  const autostart = cells[7];
  const min = cells[9];
  return {
    machineId: text(cells, 0, 'services', 'machine_id'),
    app: text(cells, 2, 'services', 'app'),
    internalPort,
    key: JSON.stringify(cells.slice(3)) + internalPort,
    protocol: typeof cells[3] === 'string' ? cells[3] : 'tcp',
    ports,
    handlers: [...handlers],
    concurrency: concurrencyOf(json(cells, 6, 'concurrency', '{}')),
    autostart: autostart === 1 || autostart === true,
    autostop: typeof cells[8] === 'string' ? cells[8] : 'off',
    minMachinesRunning: typeof min === 'number' && min > 0 ? Math.floor(min) : 0,
  };
}

function json(cells: unknown[], index: number, column: string, absent: string): unknown {
  const value = cells[index] ?? absent;
  if (typeof value !== 'string') throw new BadRowError(`services.${column} must be JSON text`);
  try {
    return JSON.parse(value);
  } catch (error) {
    throw new BadRowError(`services.${column} is not JSON: ${(error as Error).message}`);
  }
}

function portsOf(value: unknown): PortSpec[] {
  if (!Array.isArray(value)) throw new BadRowError('services.ports must be a JSON array');
  return value.map((entry: unknown) => {
    const port = entry as { port?: unknown; handlers?: unknown; force_https?: unknown } | null;
    if (typeof port !== 'object' || port === null)
      throw new BadRowError('services.ports entries must be objects');
    const handlers = Array.isArray(port.handlers)
      ? port.handlers.filter((handler): handler is string => typeof handler === 'string')
      : [];
    return {
      port: typeof port.port === 'number' ? port.port : 0,
      handlers,
      forceHttps: port.force_https === true,
    };
  });
}

/** Fly's concurrency object; absent fields take Fly's defaults (connections, soft 20, no hard). */
function concurrencyOf(value: unknown): Concurrency {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new BadRowError('services.concurrency must be a JSON object');
  const given = value as { type?: unknown; soft_limit?: unknown; hard_limit?: unknown };
  if (given.type !== undefined && given.type !== 'connections' && given.type !== 'requests')
    throw new BadRowError(`services.concurrency.type must be connections or requests`);
  const limit = (field: unknown, name: string, absent: number) => {
    if (field === undefined || field === null) return absent;
    if (typeof field !== 'number' || !(field > 0))
      throw new BadRowError(`services.concurrency.${name} must be a positive number`);
    return field;
  };
  const hardLimit = limit(given.hard_limit, 'hard_limit', defaultConcurrency.hardLimit);
  const softLimit = Math.min(
    limit(given.soft_limit, 'soft_limit', defaultConcurrency.softLimit),
    hardLimit,
  );
  const type = (given.type as ConcurrencyType | undefined) ?? defaultConcurrency.type;
  return { type, softLimit, hardLimit };
}

export interface HealthRow {
  machineId: string;
  name: string;
  status: string;
}

export function healthFromCells(cells: unknown[]): HealthRow {
  return {
    machineId: text(cells, 0, 'health_checks', 'machine_id'),
    name: text(cells, 1, 'health_checks', 'name'),
    status: typeof cells[2] === 'string' ? cells[2] : 'unknown',
  };
}

export interface HostRow {
  id: string;
  region: string;
  role: string;
  backhaulAddr: string | null;
  status: string;
}

export function hostFromCells(cells: unknown[]): HostRow {
  return {
    id: text(cells, 0, 'hosts', 'id'),
    region: typeof cells[1] === 'string' ? cells[1] : '',
    role: typeof cells[2] === 'string' ? cells[2] : 'worker',
    backhaulAddr: optionalText(cells, 3),
    status: typeof cells[4] === 'string' ? cells[4] : 'ready',
  };
}

export interface RegionRow {
  code: string;
  name: string;
  lat: number;
  lon: number;
}

export function regionFromCells(cells: unknown[]): RegionRow {
  const lat = cells[2];
  const lon = cells[3];
  if (typeof lat !== 'number' || typeof lon !== 'number')
    throw new BadRowError('regions.lat and regions.lon must be numbers');
  return {
    code: text(cells, 0, 'regions', 'code'),
    name: typeof cells[1] === 'string' ? cells[1] : '',
    lat,
    lon,
  };
}

/**
 * What a bad row's log line may show: never a certificate's PEM or sealed key (only its
 * hostname), and no more than a few short cells of anything else.
 */
export function loggableCells(table: FollowedTable, cells: unknown[]): unknown[] {
  if (table === 'certificates') return [cells[0], cells[1], '[redacted]'];
  return cells.slice(0, 10).map((cell) => (typeof cell === 'string' ? describe(cell) : cell));
}
