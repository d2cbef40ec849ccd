import { alignedRows } from '@fleet/service/text-table';

/**
 * proxyctl's human-readable output. Answers are JSON; these shape the few that an operator reads
 * under pressure (catalog, locks, airtime) and flatten the rest into `path: value` lines.
 */
export function render(command: string, result: unknown): string {
  if (command === 'catalog') return renderCatalog(result as CatalogView);
  if (command === 'locks') return renderLocks(result as LocksView);
  if (command === 'airtime') return renderAirtime(result as AirtimeView);
  if (command === 'loglevel') return renderLevel(result as { level: string; previous?: string });
  return flatten(result).join('\n');
}

interface CatalogView {
  app: string;
  machines: {
    id: string;
    state: string;
    region: string;
    hostId: string;
    load: number;
    remoteLoad: number;
    critical: string[] | null;
    services: { internalPort: number; band: number }[];
  }[];
  route: { kind: string; reason?: string; candidates?: { machine: string; band: number }[] };
}

interface Holder {
  mode: string;
  label: string;
  context: Record<string, unknown>;
  sinceMs: number;
  releasedMs?: number;
}

interface LocksView {
  catalog: { holders: Holder[]; queued: Holder[]; writer?: Holder; lastWriter?: Holder };
}

function renderCatalog(view: CatalogView): string {
  const lines = [`app ${view.app}: ${view.machines.length} machine(s)`];
  const rows = [['MACHINE', 'STATE', 'REGION', 'HOST', 'LOAD', 'REMOTE', 'BANDS', 'HEALTH']];
  for (const machine of view.machines) {
    const bands = machine.services.map((service) => `${service.internalPort}:${service.band}`);
    rows.push([
      machine.id,
      machine.state,
      machine.region,
      machine.hostId,
      String(machine.load),
      String(machine.remoteLoad),
      bands.join(',') || '-',
      machine.critical === null ? 'ok' : `critical: ${machine.critical.join(',')}`,
    ]);
  }
  lines.push(...alignedRows(rows));
  const route = view.route;
  if (route.kind === 'ok') {
    const order = (route.candidates ?? []).map((each) => `${each.machine} (band ${each.band})`);
    lines.push(`route: ${order.join(' > ')}`);
  } else {
    lines.push(`route: ${route.kind}${route.reason ? ` (${route.reason})` : ''}`);
  }
  return lines.join('\n');
}

function renderLocks(view: LocksView): string {
  const { holders, queued, writer, lastWriter } = view.catalog;
  const now = Date.now();
  const describe = (holder: Holder, verb: string, sinceMs = holder.sinceMs) => {
    const context = Object.entries(holder.context ?? {})
      .map(([key, value]) => `${key}=${String(value)}`)
      .join(' ');
    return `  ${holder.mode.padEnd(5)} ${holder.label} ${context} ${verb} ${Math.round(now - sinceMs)} ms`;
  };
  return [
    `holders: ${holders.length}`,
    ...holders.map((holder) => describe(holder, 'held for')),
    `waiting: ${queued.length}`,
    ...queued.map((holder) => describe(holder, 'waiting for')),
    `writer: ${writer ? describe(writer, 'held for').trim() : 'none'}`,
    `last writer: ${lastWriter ? `${describe(lastWriter, 'released', lastWriter.releasedMs).trim()} ago` : 'none'}`,
  ].join('\n');
}

interface AirtimeView {
  strict: { appRequestsMax: number; appBytesPerSecond: number; holder: string } | null;
  host: {
    cpuBusyRatio: number | null;
    softirqRatio: number | null;
    networkBytesPerSecond: number | null;
    sampleError: string | null;
  };
  limits: { cpuBusyRatioMax: number; networkBytesPerSecondMax: number };
  budget: { bytesPerSecond: number | null; pressure: string[] };
  appsTracked: number;
  apps: {
    app: string;
    rateBytesPerSecond: number;
    tokens: number;
    bytesPerSecond: number;
    bytesIn: number;
    bytesOut: number;
    inFlight: number;
    throttled: boolean;
    reason: string | null;
  }[];
}

function renderAirtime(view: AirtimeView): string {
  const { host, limits, budget } = view;
  const percent = (ratio: number | null) => (ratio === null ? '-' : `${Math.round(ratio * 100)}%`);
  const lines = [
    `host: cpu ${percent(host.cpuBusyRatio)} (softirq ${percent(host.softirqRatio)}) of ${percent(limits.cpuBusyRatioMax)}, ` +
      `network ${host.networkBytesPerSecond === null ? '-' : Math.round(host.networkBytesPerSecond)} of ${limits.networkBytesPerSecondMax} B/s` +
      (host.sampleError === null ? '' : ` (cannot sample: ${host.sampleError})`),
    budget.bytesPerSecond === null
      ? 'budget: unlimited (the host has headroom)'
      : `budget: ${Math.round(budget.bytesPerSecond)} B/s (${budget.pressure.join(', ')})`,
  ];
  if (view.strict !== null)
    lines.push(
      `strict second instance beside ${view.strict.holder}: ${view.strict.appBytesPerSecond} B/s and ${view.strict.appRequestsMax} in flight per app`,
    );
  lines.push(`apps: ${view.appsTracked}`);
  const rows = [['APP', 'RATE B/S', 'TOKENS', 'NOW B/S', 'IN', 'OUT', 'IN FLIGHT', 'THROTTLED']];
  for (const app of view.apps)
    rows.push([
      app.app,
      String(app.rateBytesPerSecond),
      String(app.tokens),
      String(app.bytesPerSecond),
      String(app.bytesIn),
      String(app.bytesOut),
      String(app.inFlight),
      app.throttled ? `yes: ${app.reason}` : 'no',
    ]);
  lines.push(...alignedRows(rows));
  return lines.join('\n');
}

function renderLevel(view: { level: string; previous?: string }): string {
  return view.previous === undefined
    ? `log level: ${view.level}`
    : `log level: ${view.level} (was ${view.previous})`;
}

function flatten(value: unknown, path = ''): string[] {
  if (typeof value !== 'object' || value === null) return [`${path || 'value'}: ${String(value)}`];
  const entries = Array.isArray(value)
    ? value.map((item, index) => [String(index), item])
    : Object.entries(value);
  if (entries.length === 0) return [`${path}: (none)`];
  return entries.flatMap(([key, item]) => flatten(item, path ? `${path}.${key}` : String(key)));
}
