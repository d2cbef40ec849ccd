import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { type Candidate, type Catalog, CatalogError, type RouteDecision } from '@fleet/catalog';
import type { Logger } from '@fleet/service';
import type { Dispatcher } from 'undici';
import { type ProxyErrorCode, ProxyErrors } from './errors.js';
import { endToEnd, upstreamHeaders } from './forward-headers.js';
import type { ProxyMetrics } from './metrics.js';
import { requestTarget } from './request-target.js';
import { retryable } from './retry.js';
import { routingControls } from './routing-controls.js';
import type { Upstreams } from './upstreams.js';

export interface ProxyDeps {
  catalog: Catalog;
  upstreams: Upstreams;
  region: string;
  metrics: ProxyMetrics;
  logger: Logger;
}

/** The edge's request handler: Host → app → candidates, then a streamed relay both ways. */
export function createProxyHandler(deps: ProxyDeps) {
  return (request: IncomingMessage, response: ServerResponse): void => {
    const requestId = `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
    response.setHeader('fly-request-id', requestId);
    handle(deps, request, response, requestId).catch((error: unknown) => {
      deps.logger.error({ err: error, requestId }, 'proxy request failed');
      if (!response.headersSent)
        answer(response, 502, 'PROXY_ERR_UPSTREAM', 'the proxy failed to relay the request');
      else response.destroy();
    });
  };
}

async function handle(
  deps: ProxyDeps,
  request: IncomingMessage,
  response: ServerResponse,
  requestId: string,
) {
  // Only an app the catalog knows becomes a metric label: a client must not create series.
  let app = '';
  const finish = (code: ProxyErrorCode | CatalogError['code'], message: string) => {
    const status = code in ProxyErrors ? ProxyErrors[code as ProxyErrorCode][0] : 503;
    deps.metrics.requests.add(1, { app, status });
    answer(response, status, code, message);
    request.resume(); // drain what the client sends; we answer without reading it
  };
  const target = requestTarget(request);
  if (!target.ok) return finish('PROXY_ERR_BAD_HOST', target.message);
  if (!deps.catalog.ready)
    return finish('PROXY_ERR_NOT_READY', 'the proxy is still loading its routing table');
  const aborted = new AbortController();
  response.once('close', () => {
    if (!response.writableFinished) aborted.abort();
  });
  let decision: RouteDecision;
  try {
    const resolved = await deps.catalog.resolveHost(target.host);
    if (resolved === undefined)
      return finish('PROXY_ERR_NO_APP', `no app answers to host ${target.host}`);
    decision = await deps.catalog.admit(resolved, {
      ...routingControls(request.headers),
      signal: aborted.signal,
    });
    if (decision.kind !== 'no-app') app = resolved;
  } catch (error) {
    if (aborted.signal.aborted) return;
    if (error instanceof CatalogError) return finish(error.code, error.message);
    throw error;
  }
  if (decision.kind === 'no-app')
    return finish('PROXY_ERR_NO_APP', `no app answers to host ${target.host}`);
  if (decision.kind === 'no-machine') return finish('PROXY_ERR_NO_MACHINE', decision.reason);
  const headers = upstreamHeaders(request, target.host, requestId, deps.region);
  const hasBody = request.method !== 'GET' && request.method !== 'HEAD';
  let failure: { error: unknown; candidate: Candidate } | undefined;
  for (const candidate of decision.candidates) {
    const { machine } = candidate;
    const release = deps.catalog.begin(machine);
    const started = performance.now();
    let upstream: Dispatcher.ResponseData;
    try {
      upstream = await deps.upstreams.get(machine.privateAddr!).request({
        path: target.path,
        method: (request.method ?? 'GET') as 'GET',
        headers,
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
      deps.metrics.upstreamMs.record(performance.now() - started, { app });
      deps.metrics.requests.add(1, { app, status: upstream.statusCode });
      const answered = endToEnd(upstream.headers as Record<string, string | string[]>);
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
  return finish(
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
