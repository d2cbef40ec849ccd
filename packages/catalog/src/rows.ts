/** The corrosion columns the Catalog follows, per table, in SELECT order. */
export const followedTables = {
  apps: ['name', 'org'],
  app_hostnames: ['hostname', 'app'],
  machines: ['id', 'app', 'state', 'private_addr', 'region', 'host_id', 'instance_id'],
  services: ['machine_id', 'internal_port', 'app', 'protocol', 'ports'],
  health_checks: ['machine_id', 'name', 'status'],
} as const;

export type FollowedTable = keyof typeof followedTables;

export interface MachineEntry {
  id: string;
  app: string;
  state: string;
  privateAddr: string | null;
  region: string;
  hostId: string;
  instanceId: string;
}

export interface ServiceEntry {
  machineId: string;
  internalPort: number;
  app: string;
  protocol: string;
  /** True when one of the service's ports has the `http` handler. */
  http: boolean;
}

/** A row the Catalog could not use; it is skipped and counted, the rest goes on. */
export class BadRowError extends Error {
  readonly code = 'CATALOG_ERR_BAD_ROW';
}

function text(cells: unknown[], index: number, table: string, column: string): string {
  const value = cells[index];
  if (typeof value !== 'string')
    throw new BadRowError(`${table}.${column} must be text, got ${JSON.stringify(value)}`);
  return value;
}

export function machineFromCells(cells: unknown[]): MachineEntry {
  const address = cells[3];
  return {
    id: text(cells, 0, 'machines', 'id'),
    app: text(cells, 1, 'machines', 'app'),
    state: text(cells, 2, 'machines', 'state'),
    privateAddr: typeof address === 'string' && address !== '' ? address : null,
    region: text(cells, 4, 'machines', 'region'),
    hostId: text(cells, 5, 'machines', 'host_id'),
    instanceId: text(cells, 6, 'machines', 'instance_id'),
  };
}

/** Parses a services row; its `ports` column is JSON text: `[{"port":80,"handlers":["http"]}]`. */
export function serviceFromCells(cells: unknown[]): ServiceEntry {
  const internalPort = cells[1];
  if (typeof internalPort !== 'number')
    throw new BadRowError(`services.internal_port must be a number`);
  let ports: unknown;
  try {
    ports = JSON.parse(text(cells, 4, 'services', 'ports'));
  } catch (error) {
    if (error instanceof BadRowError) throw error;
    throw new BadRowError(`services.ports is not JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(ports)) throw new BadRowError('services.ports must be a JSON array');
  const http = ports.some(
    (port) =>
      typeof port === 'object' &&
      port !== null &&
      Array.isArray((port as { handlers?: unknown }).handlers) &&
      (port as { handlers: unknown[] }).handlers.includes('http'),
  );
  return {
    machineId: text(cells, 0, 'services', 'machine_id'),
    internalPort,
    app: text(cells, 2, 'services', 'app'),
    protocol: text(cells, 3, 'services', 'protocol'),
    http,
  };
}

export function keyOf(table: FollowedTable, cells: unknown[]): string {
  if (table === 'services' || table === 'health_checks')
    return JSON.stringify([cells[0], cells[1]]);
  return String(cells[0]);
}
