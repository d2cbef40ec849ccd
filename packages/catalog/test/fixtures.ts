import type { WatchEvent } from '@fleet/corrosion-client';
import { Catalog, type CatalogOptions, followedTables } from '../src/index.js';

export const quiet = { warn: () => undefined, error: () => undefined };

export const row = (cells: unknown[]): WatchEvent => ({ type: 'row', rowid: 0, cells });
export const change = (kind: 'insert' | 'update' | 'delete', cells: unknown[]): WatchEvent => ({
  type: 'change',
  kind,
  rowid: 0,
  cells,
  changeId: 1,
});

export function ports(...list: number[]): string {
  return JSON.stringify(list.map((port) => ({ port, handlers: ['http'] })));
}

export interface MachineSpec {
  id: string;
  app?: string;
  state?: string;
  region?: string;
  host?: string;
  addr?: string | null;
  concurrency?: object;
  autostart?: boolean;
  internalPort?: number;
  ports?: string;
}

/** The cells of a machines row and its one services row, in the Catalog's column order. */
export function machineCells(spec: MachineSpec) {
  const app = spec.app ?? 'web';
  const portList = spec.ports ?? ports(80, 443);
  const handlers = [
    ...new Set((JSON.parse(portList) as { handlers: string[] }[]).flatMap((port) => port.handlers)),
  ];
  return {
    machine: [
      spec.id,
      app,
      spec.state ?? 'started',
      spec.addr === undefined ? `10.0.0.1:${spec.id.length}` : spec.addr,
      spec.region ?? 'ams',
      spec.host ?? `host-${spec.region ?? 'ams'}`,
      `inst-${spec.id}`,
    ],
    service: [
      spec.id,
      spec.internalPort ?? 8080,
      app,
      'tcp',
      portList,
      JSON.stringify(handlers),
      JSON.stringify(spec.concurrency ?? {}),
      spec.autostart ? 1 : 0,
      'stop',
      0,
    ],
  };
}

/** A Catalog fed by hand (no corrosion): regions, hosts, apps and machines, every table ready. */
export async function catalogWith(
  machines: MachineSpec[],
  options: Partial<CatalogOptions> = {},
): Promise<Catalog> {
  const catalog = new Catalog({ domain: 'fleet.test', logger: quiet, region: 'ams', ...options });
  // ams (Amsterdam), fra (Frankfurt, ~360 km), syd (Sydney, far away)
  await catalog.apply('regions', row(['ams', 'Amsterdam', 52.37, 4.9]));
  await catalog.apply('regions', row(['fra', 'Frankfurt', 50.11, 8.68]));
  await catalog.apply('regions', row(['syd', 'Sydney', -33.87, 151.21]));
  const apps = new Set(machines.map((machine) => machine.app ?? 'web'));
  for (const app of apps) await catalog.apply('apps', row([app, 'personal', 'default']));
  for (const machine of machines) {
    const cells = machineCells(machine);
    await catalog.apply('machines', row(cells.machine));
    await catalog.apply('services', row(cells.service));
  }
  for (const table of Object.keys(followedTables) as (keyof typeof followedTables)[]) {
    await catalog.apply(table, { type: 'ready', changeId: 0 });
  }
  return catalog;
}
