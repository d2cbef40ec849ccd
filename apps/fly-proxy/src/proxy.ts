import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Candidate } from '@fleet/catalog';
import type { Dispatcher } from 'undici';
import { backhaulHeaders, hopFor } from './backhaul.js';
import { statusOfCode } from './errors.js';
import { endToEnd, upstreamHeaders } from './forward-headers.js';
import type { Http1Relay } from './http1/relay.js';
import type { ProxyDeps } from './proxy-deps.js';
import { requestTarget } from './request-target.js';
import { retryable } from './retry.js';
import { forcesHttps, httpsLocation, type Routed, routeRequest } from './route-request.js';
import { routingControls } from './routing-controls.js';

/**
 * The relay for requests that arrive over HTTP/2 (and HTTPS, until TLS hands its HTTP/1.1
 * connections to the raw relay): Node's compat objects in, undici pools out. Routing, error
 * codes, request ids and metrics are the HTTP/1.1 relay's own.
 */
export function createProxyHandler(
  deps: ProxyDeps,
  relay: Pick<Http1Relay, 'requestId' | 'options'>,
) {
  return (request: IncomingMessage, response: ServerResponse): void => {
    const requestId = relay.requestId();
    response.setHeader('fly-request-id', requestId);
    handle(deps, relay.options, request, response, requestId).catch((error: unknown) => {
      deps.logger.error({ err: error, requestId }, 'proxy request failed');
      if (!response.headersSent)
        answer(response, 502, 'PROXY_ERR_UPSTREAM', 'the proxy failed to relay the request');
      else response.destroy();
    });
  };
}

async function handle(
  deps: ProxyDeps,
  options: Http1Relay['options'],
  request: IncomingMessage,
  response: ServerResponse,
  requestId: string,
) {
  const refuse = (app: string, code: Extract<Routed, { ok: false }>['code'], message: string) => {
    const status = statusOfCode(code);
    deps.metrics.request(app, status);
    answer(response, status, code, message);
    request.resume(); // drain what the client sends; we answer without reading it
  };
  if (options.mode === 'backhaul')
    return refuse('', 'PROXY_ERR_BAD_REQUEST', 'a backhaul takes HTTP/1.1 requests from edges');
  const target = requestTarget(request);
  if (!target.ok) return refuse('', 'PROXY_ERR_BAD_HOST', target.message);
  const aborted = new AbortController();
  response.once('close', () => {
    if (!response.writableFinished) aborted.abort();
  });
  let routed: Routed;
  try {
    routed = await routeRequest(
      deps,
      target.host,
      routingControls(request.headers),
      aborted.signal,
    );
  } catch (error) {
    if (aborted.signal.aborted) return;
    throw error;
  }
  if (!routed.ok) return refuse(routed.app, routed.code, routed.message);
  const { app } = routed;
  const { encrypted } = request.socket as typeof request.socket & { encrypted?: boolean };
  if (encrypted !== true && forcesHttps(routed.candidates)) {
    deps.metrics.request(app, 301);
    response.writeHead(301, { location: httpsLocation(target.host, target.path) });
    response.end();
    return;
  }
  const headers = upstreamHeaders(request, target.host, requestId, deps.region);
  const hasBody = request.method !== 'GET' && request.method !== 'HEAD';
  let failure: { error: unknown; candidate: Candidate } | undefined;
  for (const candidate of routed.candidates) {
    const { machine } = candidate;
    const hop = hopFor(machine, options.hostId);
    if (hop === undefined) continue; // no address to reach it by (yet)
    const release = deps.catalog.begin(machine);
    deps.autostop?.served(machine);
    const started = performance.now();
    let upstream: Dispatcher.ResponseData;
    try {
      upstream = await deps.upstreams.get(hop.address).request({
        path: target.path,
        method: (request.method ?? 'GET') as 'GET',
        headers: hop.viaBackhaul
          ? {
              ...headers,
              [backhaulHeaders.machine]: machine.id,
              [backhaulHeaders.app]: machine.app,
              [backhaulHeaders.auth]: options.backhaulToken!,
            }
          : headers,
        body: hasBody ? request : null,
        signal: aborted.signal,
      });
    } catch (error) {
      release();
      if (aborted.signal.aborted) return;
      deps.logger.warn({ err: error, app, machine: machine.id, requestId }, 'upstream failed');
      failure = { error, candidate };
      if (retryable(error, request)) continue;
      break;
    }
    try {
      deps.metrics.upstream(app, performance.now() - started);
      deps.metrics.request(app, upstream.statusCode);
      const answered = endToEnd(upstream.headers as Record<string, string | string[]>);
      const load = Number(answered[backhaulHeaders.load]);
      if (hop.viaBackhaul && Number.isFinite(load)) deps.catalog.reportLoad(machine.id, load);
      delete answered[backhaulHeaders.load];
      answered['fly-request-id'] = requestId;
      response.writeHead(upstream.statusCode, answered);
      await pipeline(upstream.body, response).catch((error: unknown) => {
        if (!aborted.signal.aborted)
          deps.logger.warn({ err: error, app, requestId }, 'relay broke mid-body');
      });
    } finally {
      release();
    }
    return;
  }
  const timedOut = failure !== undefined && isTimeout(failure.error);
  const machineId = failure?.candidate.machine.id ?? 'none';
  return refuse(
    app,
    timedOut ? 'PROXY_ERR_UPSTREAM_TIMEOUT' : 'PROXY_ERR_UPSTREAM',
    `machine ${machineId} of app ${app} ${timedOut ? 'did not answer in time' : 'could not be reached'}`,
  );
}

function isTimeout(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT';
}

function answer(response: ServerResponse, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: message, code });
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  response.end(body);
}
