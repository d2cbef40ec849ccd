import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Candidate } from '@fleet/catalog';
import type { Dispatcher } from 'undici';
import { backhaulHeaders, hopFor } from './backhaul.js';
import { statusOfCode } from './errors.js';
import { endToEnd, upstreamHeaders } from './forward-headers.js';
import type { Http1Relay } from './http1/relay.js';
import type { ProxyDeps } from './proxy-deps.js';
import {
  parseReplay,
  replayBodyBytesMax,
  replaySource,
  replaysMax,
  routeReplay,
} from './replay.js';
import { requestTarget } from './request-target.js';
import { neverReached, retryable } from './retry.js';
import {
  forcesHttps,
  httpsLocation,
  type Routed,
  routeApp,
  routeRequest,
} from './route-request.js';
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
  // The body streams to the machine; up to 1 MB of it is kept so fly-replay can send it again.
  const kept: Buffer[] | null = hasBody ? [] : null;
  let body: Readable | Buffer | null = hasBody ? Readable.from(keeping(request, kept!)) : null;
  let candidates = routed.candidates;
  let replays = 0;
  let fallback: { mode: 'force_self' | 'prefer_self'; machineId: string } | undefined;
  let failure: { error: unknown; candidate: Candidate } | undefined;
  for (;;) {
    const outcome = await relayToFirst(deps, options, candidates, {
      path: target.path,
      method: request.method ?? 'GET',
      headers,
      body,
      signal: aborted.signal,
      request,
      response,
      requestId,
      app,
    });
    if (outcome.kind === 'done' || aborted.signal.aborted) return;
    if (outcome.kind === 'failed') {
      failure = outcome.failure;
      if (fallback === undefined) break;
    } else {
      // fly-replay: the machine's answer is dropped; the request goes where the header says.
      const directive = parseReplay(outcome.replay);
      replays += 1;
      const why =
        typeof directive === 'string'
          ? directive
          : replays > replaysMax
            ? `the request was replayed more than ${replaysMax} times`
            : hasBody && !request.complete
              ? 'the machine asked for a replay before the request body was received'
              : kept !== null && keptBytes(kept) > replayBodyBytesMax
                ? `a request body over ${replayBodyBytesMax} bytes cannot be replayed`
                : undefined;
      if (why !== undefined || typeof directive === 'string')
        return refuse(
          app,
          'PROXY_ERR_REPLAY',
          `machine ${outcome.machine.id} of app ${app}: ${why}`,
        );
      headers['fly-replay-src'] = replaySource(
        outcome.machine.id,
        outcome.machine.region,
        directive.state,
      );
      if (directive.fallback !== undefined)
        fallback = { mode: directive.fallback, machineId: outcome.machine.id };
      body = kept === null ? null : Buffer.concat(kept);
      const next = await routeReplay(deps, directive, { app, machineId: outcome.machine.id });
      if (next.ok) {
        candidates = next.candidates;
        continue;
      }
      if (fallback === undefined) return refuse(next.app || app, next.code, next.message);
      failure = undefined;
      headers['fly-replay-failed'] = `${next.code}: ${next.message}`.replace(/[\r\n]/g, ' ');
    }
    // The replay could not be delivered: back to the machine that asked, as its fallback says.
    const { mode, machineId } = fallback!;
    fallback = undefined;
    if (failure !== undefined && headers['fly-replay-failed'] === undefined)
      headers['fly-replay-failed'] = 'PROXY_ERR_UPSTREAM: the replay target could not be reached';
    const back = await routeApp(
      deps,
      app,
      mode === 'force_self' ? { forceInstance: machineId } : { preferInstance: machineId },
    );
    if (!back.ok) return refuse(app, back.code, back.message);
    candidates = back.candidates;
    failure = undefined;
  }
  const timedOut = failure !== undefined && isTimeout(failure.error);
  const machineId = failure?.candidate.machine.id ?? 'none';
  return refuse(
    app,
    timedOut ? 'PROXY_ERR_UPSTREAM_TIMEOUT' : 'PROXY_ERR_UPSTREAM',
    `machine ${machineId} of app ${app} ${timedOut ? 'did not answer in time' : 'could not be reached'}`,
  );
}

interface Attempt {
  path: string;
  method: string;
  headers: Record<string, string | string[]>;
  body: Readable | Buffer | null;
  signal: AbortSignal;
  request: IncomingMessage;
  response: ServerResponse;
  requestId: string;
  app: string;
}

type Outcome =
  | { kind: 'done' }
  | { kind: 'failed'; failure: { error: unknown; candidate: Candidate } | undefined }
  | { kind: 'replay'; replay: string; machine: Candidate['machine'] };

/** Sends the request to the first candidate that takes it, and relays its answer. */
async function relayToFirst(
  deps: ProxyDeps,
  options: Http1Relay['options'],
  candidates: readonly Candidate[],
  attempt: Attempt,
): Promise<Outcome> {
  const { app, requestId, response, signal } = attempt;
  let failure: { error: unknown; candidate: Candidate } | undefined;
  for (const candidate of candidates) {
    const { machine } = candidate;
    const hop = hopFor(machine, options.hostId);
    if (hop === undefined) continue; // no address to reach it by (yet)
    const release = deps.catalog.begin(machine);
    deps.autostop?.served(machine);
    const started = performance.now();
    let upstream: Dispatcher.ResponseData;
    try {
      upstream = await deps.upstreams.get(hop.address).request({
        path: attempt.path,
        method: attempt.method as 'GET',
        headers: hop.viaBackhaul
          ? {
              ...attempt.headers,
              [backhaulHeaders.machine]: machine.id,
              [backhaulHeaders.app]: machine.app,
              [backhaulHeaders.auth]: options.backhaulToken!,
            }
          : attempt.headers,
        body: attempt.body,
        signal,
      });
    } catch (error) {
      release();
      if (signal.aborted) return { kind: 'done' };
      deps.logger.warn({ err: error, app, machine: machine.id, requestId }, 'upstream failed');
      if (neverReached(error)) deps.catalog.machineUnreachable(machine.id);
      failure = { error, candidate };
      if (retryable(error, attempt.request)) continue;
      break;
    }
    try {
      const replay = upstream.headers['fly-replay'];
      if (replay !== undefined) {
        await upstream.body.dump();
        return { kind: 'replay', replay: String(replay), machine };
      }
      deps.catalog.machineReachable(machine.id);
      deps.metrics.upstream(app, performance.now() - started);
      deps.metrics.request(app, upstream.statusCode);
      const answered = endToEnd(upstream.headers as Record<string, string | string[]>);
      const load = Number(answered[backhaulHeaders.load]);
      if (hop.viaBackhaul && Number.isFinite(load)) deps.catalog.reportLoad(machine.id, load);
      delete answered[backhaulHeaders.load];
      answered['fly-request-id'] = requestId;
      response.writeHead(upstream.statusCode, answered);
      await pipeline(upstream.body, response).catch((error: unknown) => {
        if (!signal.aborted)
          deps.logger.warn({ err: error, app, requestId }, 'relay broke mid-body');
      });
    } finally {
      release();
    }
    return { kind: 'done' };
  }
  return { kind: 'failed', failure };
}

/** The request body as it streams, with its first `replayBodyBytesMax` (+1) bytes kept. */
async function* keeping(request: IncomingMessage, kept: Buffer[]): AsyncIterable<Buffer> {
  let bytes = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    if (bytes <= replayBodyBytesMax) {
      kept.push(chunk);
      bytes += chunk.length;
    }
    yield chunk;
  }
}

function keptBytes(kept: readonly Buffer[]): number {
  return kept.reduce((sum, chunk) => sum + chunk.length, 0);
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
