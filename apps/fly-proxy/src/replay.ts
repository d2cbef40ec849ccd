import type { RouteOptions } from '@fleet/catalog';
import { durationMs } from '@fleet/machine-config/fly-values';
import type { ProxyDeps } from './proxy-deps.js';
import { type Routed, routeApp } from './route-request.js';

/**
 * Fly's `fly-replay` response header (networking/dynamic-request-routing): a machine asks the
 * proxy to deliver the request it just received somewhere else instead of answering it.
 * `region="sjc,any";app=other;instance=…;prefer_instance=…;state=…;elsewhere=true;timeout=2s;
 * fallback=prefer_self`.
 */
export interface ReplayDirective {
  /** Regions in order of preference; `any` in the list means any region after those before it. */
  regions: string[];
  instance?: string;
  preferInstance?: string;
  app?: string;
  state?: string;
  elsewhere: boolean;
  timeoutMs?: number;
  fallback?: 'force_self' | 'prefer_self';
}

/** Bound on a request body the proxy keeps so it can be replayed (Fly's limit). */
export const replayBodyBytesMax = 1024 * 1024;

/** Replays of one request at most: a chain of machines replaying to each other ends. */
export const replaysMax = 5;

const fieldNames = new Set([
  'region',
  'instance',
  'prefer_instance',
  'app',
  'state',
  'elsewhere',
  'timeout',
  'fallback',
]);

/** Parses the header; a message naming the problem when it is malformed. */
export function parseReplay(value: string): ReplayDirective | string {
  const directive: ReplayDirective = { regions: [], elsewhere: false };
  for (const field of splitFields(value)) {
    const equals = field.indexOf('=');
    const name = (equals < 0 ? field : field.slice(0, equals)).trim().toLowerCase();
    let text = equals < 0 ? '' : field.slice(equals + 1).trim();
    if (text.length >= 2 && text.startsWith('"') && text.endsWith('"')) text = text.slice(1, -1);
    if (!fieldNames.has(name)) return `fly-replay has an unknown field "${name}"`;
    if (text === '' && name !== 'state') return `fly-replay field ${name} has no value`;
    if (name === 'region') directive.regions = text.split(',').map((r) => r.trim().toLowerCase());
    else if (name === 'instance') directive.instance = text;
    else if (name === 'prefer_instance') directive.preferInstance = text;
    else if (name === 'app') directive.app = text;
    else if (name === 'state') directive.state = text;
    else if (name === 'elsewhere') directive.elsewhere = text.toLowerCase() === 'true';
    else if (name === 'timeout') {
      const timeoutMs = parseDurationMs(text);
      if (timeoutMs === undefined)
        return `fly-replay timeout ${text} is not a duration (800ms, 2s)`;
      directive.timeoutMs = timeoutMs;
    } else if (text === 'force_self' || text === 'prefer_self') directive.fallback = text;
    else return `fly-replay fallback ${text} is not force_self or prefer_self`;
  }
  if (
    directive.regions.length === 0 &&
    !directive.instance &&
    !directive.preferInstance &&
    !directive.app &&
    !directive.elsewhere
  )
    return 'fly-replay names no region, instance, app or elsewhere';
  return directive;
}

/** The `fly-replay-src` header of the replayed request: who asked, from where, when. */
export function replaySource(machineId: string, region: string, state: string | undefined): string {
  const micros = BigInt(Date.now()) * 1000n;
  return `instance=${machineId};region=${region};t=${micros}${state === undefined ? '' : `;state=${state}`}`;
}

/** `;`-separated fields, a `;` inside a quoted value kept. */
function splitFields(value: string): string[] {
  const fields: string[] = [];
  let current = '';
  let quoted = false;
  for (const char of value) {
    if (char === '"') quoted = !quoted;
    if (char === ';' && !quoted) {
      if (current.trim()) fields.push(current);
      current = '';
    } else current += char;
  }
  if (current.trim()) fields.push(current);
  return fields;
}

/** A replay's timeout (`800ms`, `2s`): above 0, at most 10 minutes. */
function parseDurationMs(text: string): number | undefined {
  const ms = durationMs(text);
  return ms !== undefined && ms > 0 && ms <= 600_000 ? ms : undefined;
}

/**
 * Where a replay goes: the candidates of the app it names (same organization only), in the
 * first of its regions that has one (`any`: every region), without the replaying machine when
 * `elsewhere`, restricted to or preferring the instance it names. `from.port`: the request came in
 * on that service port's listener, so the replay goes to the service of that port (as the request
 * itself went), not to the app's first HTTP service.
 */
export async function routeReplay(
  deps: ProxyDeps,
  directive: ReplayDirective,
  from: { app: string; machineId: string; port: number | undefined },
): Promise<Routed> {
  const app = directive.app ?? from.app;
  if (app !== from.app) {
    const [mine, theirs] = await Promise.all([deps.catalog.app(from.app), deps.catalog.app(app)]);
    if (theirs === undefined)
      return refusedReplay(from.app, `fly-replay names app ${app}, which does not exist`);
    if (mine?.org !== theirs.org)
      return refusedReplay(from.app, `fly-replay names app ${app}, of another organization`);
  }
  const options: RouteOptions = {};
  if (from.port !== undefined) options.port = from.port;
  if (directive.instance) options.forceInstance = directive.instance;
  if (directive.preferInstance) options.preferInstance = directive.preferInstance;
  if (directive.elsewhere) options.exclude = [from.machineId];
  const regions = directive.regions.length > 0 ? directive.regions : ['any'];
  const inRegion = (region: string) =>
    routeApp(deps, app, region === 'any' ? options : { ...options, forceRegion: region });
  // Each region in turn; the last one's refusal is the answer when none had a machine.
  let routed = await inRegion(regions[0] ?? 'any');
  for (const region of regions.slice(1)) {
    if (routed.ok) return routed;
    routed = await inRegion(region);
  }
  return routed;
}

function refusedReplay(app: string, message: string): Routed {
  return { ok: false, app, code: 'PROXY_ERR_REPLAY', message };
}
