import {
  type Candidate,
  CatalogError,
  type RouteDecision,
  type RouteOptions,
} from '@fleet/catalog';
import type { ProxyErrorCode } from './errors.js';
import type { ProxyDeps } from './proxy-deps.js';

export type Routed =
  | { ok: true; app: string; candidates: Candidate[] }
  /** `app` is empty unless the catalog knows it: only known apps become metric labels. */
  | { ok: false; app: string; code: ProxyErrorCode | CatalogError['code']; message: string };

/**
 * Host → app → candidate machines, shared by both relays: a request the proxy answers itself
 * comes back with its error code. A plain value when the catalog answers from memory (the hot
 * path); a promise when it must load the app or the request waits for capacity. Rejects only
 * when `signal` aborts (the client left) or on a failure that is not the catalog's.
 */
export function routeRequest(
  deps: ProxyDeps,
  host: string,
  options: RouteOptions,
  signal?: AbortSignal,
): Routed | Promise<Routed> {
  if (!deps.catalog.ready)
    return refused('', 'PROXY_ERR_NOT_READY', 'the proxy is still loading its routing table');
  let resolving: ReturnType<ProxyDeps['catalog']['resolveHost']>;
  try {
    resolving = deps.catalog.resolveHost(host);
  } catch (error) {
    return refusedFor(error, signal);
  }
  if (resolving instanceof Promise) {
    return resolving.then(
      (app) => decide(deps, host, app, options, signal),
      (error: unknown) => refusedFor(error, signal),
    );
  }
  return decide(deps, host, resolving, options, signal);
}

/** routeRequest for an app named directly (fly-replay `app=`), not by a Host. */
export function routeApp(
  deps: ProxyDeps,
  app: string,
  options: RouteOptions,
): Routed | Promise<Routed> {
  if (!deps.catalog.ready)
    return refused('', 'PROXY_ERR_NOT_READY', 'the proxy is still loading its routing table');
  try {
    return decide(deps, app, app, options, undefined);
  } catch (error) {
    return refusedFor(error, undefined);
  }
}

function decide(
  deps: ProxyDeps,
  host: string,
  app: string | undefined,
  options: RouteOptions,
  signal: AbortSignal | undefined,
): Routed | Promise<Routed> {
  if (app === undefined) return refused('', 'PROXY_ERR_NO_APP', `no app answers to host ${host}`);
  // Every promise here gets its rejection handled: a load that times out while corrosion is
  // slow must answer 503, never become an unhandled rejection (seed 004).
  const admitted = (): Promise<Routed> =>
    deps.catalog.admit(app, signal ? { ...options, signal } : options).then(
      (decision) => autostarted(deps, app, host, decision, options),
      (error: unknown) => refusedFor(error, signal),
    );
  const saturated = (decision: RouteDecision) =>
    decision.kind === 'no-machine' && decision.saturated;
  const routed = deps.catalog.route(app, options);
  if (routed instanceof Promise) {
    return routed.then(
      // Saturated: admit() waits for capacity (bounded) and routes again.
      (decision) =>
        saturated(decision) ? admitted() : autostarted(deps, app, host, decision, options),
      (error: unknown) => refusedFor(error, signal),
    );
  }
  return saturated(routed) ? admitted() : autostarted(deps, app, host, routed, options);
}

/**
 * Fly's autostart: no machine can take the request but a stopped one could — start it and route
 * again (the request waits, bounded); every candidate past its soft limit — start one more
 * without holding the request.
 */
function autostarted(
  deps: ProxyDeps,
  app: string,
  host: string,
  decision: RouteDecision,
  options: RouteOptions,
): Routed | Promise<Routed> {
  const autostart = deps.autostart;
  if (autostart === undefined || decision.kind === 'no-app') return routedOf(app, host, decision);
  if (decision.kind === 'ok') {
    if (decision.startable.length > 0 && decision.candidates.every((one) => one.band > 0))
      autostart.startInBackground(app, decision.startable);
    return routedOf(app, host, decision);
  }
  if (decision.saturated || decision.startable.length === 0) return routedOf(app, host, decision);
  return autostart.startOne(app, decision.startable).then((result) => {
    if (!result.started)
      return refused(app, 'PROXY_ERR_NO_MACHINE', `${decision.reason}; ${result.why}`);
    const again = deps.catalog.route(app, options);
    return again instanceof Promise
      ? again.then(
          (next) => routedOf(app, host, next),
          (error: unknown) => refusedFor(error, undefined),
        )
      : routedOf(app, host, again);
  });
}

function routedOf(app: string, host: string, decision: RouteDecision): Routed {
  if (decision.kind === 'ok') return { ok: true, app, candidates: decision.candidates };
  if (decision.kind === 'no-app')
    return refused('', 'PROXY_ERR_NO_APP', `no app answers to host ${host}`);
  return refused(app, 'PROXY_ERR_NO_MACHINE', decision.reason);
}

function refusedFor(error: unknown, signal: AbortSignal | undefined): Routed {
  if (error instanceof CatalogError && !signal?.aborted)
    return refused('', error.code, error.message);
  throw error;
}

function refused(
  app: string,
  code: Extract<Routed, { ok: false }>['code'],
  message: string,
): Routed {
  return { ok: false, app, code, message };
}

/**
 * Fly's `force_https` on a service's HTTP port: a request that came in plain is answered 301 to
 * the same URL over https (the HTTP port's setting is the only one a plain request can meet).
 */
export function forcesHttps(candidates: readonly Candidate[]): boolean {
  return candidates[0]?.service.forceHttps === true;
}

/** The https URL a plain request is sent to by force_https (the default port, 443). */
export function httpsLocation(host: string, path: string): string {
  const name = host.startsWith('[')
    ? host.slice(0, host.indexOf(']') + 1)
    : host.replace(/:\d+$/, '');
  return `https://${name}${path}`;
}
