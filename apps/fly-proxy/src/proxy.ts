import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Catalog } from '@fleet/catalog';
import type { Logger } from '@fleet/service';
import { errors as undiciErrors } from 'undici';
import { type ProxyErrorCode, ProxyErrors } from './errors.js';
import { endToEnd, upstreamHeaders } from './forward-headers.js';
import type { ProxyMetrics } from './metrics.js';
import type { Upstreams } from './upstreams.js';

export interface ProxyDeps {
  catalog: Catalog;
  upstreams: Upstreams;
  region: string;
  metrics: ProxyMetrics;
  logger: Logger;
}

/** The edge's request handler: Host → app → machine, then a streamed relay both ways. */
export function createProxyHandler(deps: ProxyDeps) {
  return (request: IncomingMessage, response: ServerResponse): void => {
    const requestId = `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
    response.setHeader('fly-request-id', requestId);
    handle(deps, request, response, requestId).catch((error: unknown) => {
      deps.logger.error({ err: error, requestId }, 'proxy request failed');
      if (!response.headersSent)
        answer(response, 'PROXY_ERR_UPSTREAM', 'the proxy failed to relay the request');
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
  const host = request.headers.host;
  let app = '';
  const finish = (code: ProxyErrorCode, message: string) => {
    deps.metrics.requests.add(1, { app, status: ProxyErrors[code][0] });
    answer(response, code, message);
    request.resume(); // drain what the client sends; we answer without reading it
  };
  if (!host) return finish('PROXY_ERR_BAD_HOST', 'the request has no Host header');
  if (!deps.catalog.ready)
    return finish('PROXY_ERR_NOT_READY', 'the proxy is still loading its routing table');
  const resolved = await deps.catalog.resolveHost(host);
  if (resolved === undefined) return finish('PROXY_ERR_NO_APP', `no app answers to host ${host}`);
  app = resolved;
  const decision = await deps.catalog.route(app);
  if (decision.kind === 'no-app')
    return finish('PROXY_ERR_NO_APP', `app ${app} not found (host ${host})`);
  if (decision.kind === 'no-machine') return finish('PROXY_ERR_NO_MACHINE', decision.reason);
  const { machine } = decision;
  const aborted = new AbortController();
  response.once('close', () => {
    if (!response.writableFinished) aborted.abort();
  });
  const started = performance.now();
  let upstream: Awaited<ReturnType<ReturnType<Upstreams['get']>['request']>>;
  try {
    const hasBody = request.method !== 'GET' && request.method !== 'HEAD';
    upstream = await deps.upstreams.get(machine.privateAddr!).request({
      path: request.url ?? '/',
      method: (request.method ?? 'GET') as 'GET',
      headers: upstreamHeaders(request, requestId, deps.region),
      body: hasBody ? request : null,
      signal: aborted.signal,
    });
  } catch (error) {
    if (aborted.signal.aborted) return;
    const timedOut =
      error instanceof undiciErrors.HeadersTimeoutError ||
      error instanceof undiciErrors.ConnectTimeoutError;
    deps.logger.warn({ err: error, app, machine: machine.id, requestId }, 'upstream failed');
    return finish(
      timedOut ? 'PROXY_ERR_UPSTREAM_TIMEOUT' : 'PROXY_ERR_UPSTREAM',
      `machine ${machine.id} of app ${app} ${timedOut ? 'did not answer in time' : 'could not be reached'}`,
    );
  }
  deps.metrics.upstreamMs.record(performance.now() - started, { app });
  deps.metrics.requests.add(1, { app, status: upstream.statusCode });
  const headers = endToEnd(upstream.headers as Record<string, string | string[]>);
  response.writeHead(upstream.statusCode, { ...headers, 'fly-request-id': requestId });
  await pipeline(upstream.body, response).catch((error: unknown) => {
    if (!aborted.signal.aborted)
      deps.logger.warn({ err: error, app, requestId }, 'relay broke mid-body');
  });
}

function answer(response: ServerResponse, code: ProxyErrorCode, message: string): void {
  const body = JSON.stringify({ error: message, code });
  response.writeHead(ProxyErrors[code][0], {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  response.end(body);
}
