import type { Http2Session, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { connect, type Socket } from 'node:net';
import { present } from '@fleet/service/invariant';
import { chargeTunnel } from './airtime/tunnel.js';
import { backhaulHeaders, backhaulTokenMatches, serviceAddress } from './backhaul.js';
import { backhaulWindowBytes } from './backhaul-session.js';
import { type ProxyErrorCode, statusOfCode } from './errors.js';
import type { Http1Relay } from './http1/relay.js';
import { routeApp } from './route-request.js';
import { watchedOf } from './tls/guard.js';

export interface BackhaulStreamOptions {
  connectTimeoutMs: number;
  /** A tunnel with no byte either way this long is closed. */
  idleTimeoutMs: number;
}

/** Sessions that presented the fleet-key token once: their PINGs are an edge measuring RTT. */
const edgeSessions = new WeakSet<Http2Session>();

/**
 * The backhaul's side of the edge → worker hop: every stream of an edge's HTTP/2 session is a
 * CONNECT carrying the fleet-key token (checked per stream, constant time), and either
 * - `fly-backhaul-stream: http`: an HTTP/1.1 exchange, handed to this proxy's HTTP/1.1 relay in
 *   backhaul mode as if it were a connection (it delivers into the machine's raw pool and answers
 *   with `fly-backhaul-load`), or
 * - `fly-backhaul-stream: tcp`: the bytes of one TCP connection, piped to the named machine's
 *   private address (TCP passthrough services of machines on this host).
 */
export function backhaulStreamHandler(relay: Http1Relay, options: BackhaulStreamOptions) {
  const token = present(relay.options.backhaulToken, 'the backhaul token of a backhaul relay');
  return (stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void => {
    stream.on('error', () => {}); // 'close' follows
    const refuse = (code: ProxyErrorCode, message: string) => refused(stream, code, message);
    if (headers[':method'] !== 'CONNECT') {
      refuse('PROXY_ERR_BAD_REQUEST', 'a backhaul takes CONNECT streams from edges');
      return;
    }
    const presented = headers[backhaulHeaders.auth];
    if (!backhaulTokenMatches(typeof presented === 'string' ? presented : undefined, token)) {
      refuse('PROXY_ERR_BACKHAUL_AUTH', 'the backhaul takes streams from edges of this fleet only');
      return;
    }
    const session = stream.session;
    if (session !== undefined && !edgeSessions.has(session)) {
      edgeSessions.add(session);
      session.setLocalWindowSize(backhaulWindowBytes); // bodies of many streams share it
      // The guard cuts connections whose bytes start nothing (seed 000); an edge's PINGs are
      // its RTT measurement, so on an authenticated session they count as progress.
      session.on('ping', () => {
        const watched = watchedOf(session.socket);
        if (watched !== undefined) watched.requestsStarted += 1;
      });
    }
    inFlight(stream);
    const kind = headers[backhaulHeaders.stream];
    if (kind === 'http') {
      stream.respond({ ':status': 200 });
      relay.serve(stream);
    } else if (kind === 'tcp') void tunnel(relay, options, stream, headers);
    else refuse('PROXY_ERR_BAD_REQUEST', `${backhaulHeaders.stream} must be http or tcp`);
  };
}

/** Counts the stream as a request in flight on its connection while it is open (the guard). */
function inFlight(stream: ServerHttp2Stream): void {
  const watched = watchedOf(stream.session?.socket);
  if (watched === undefined) return;
  watched.requestsStarted += 1;
  watched.requestsInFlight += 1;
  stream.once('close', () => {
    watched.requestsInFlight -= 1;
  });
}

/** Pipes a stream to the named machine of this host, once it is routed and connected. */
async function tunnel(
  relay: Http1Relay,
  options: BackhaulStreamOptions,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
): Promise<void> {
  const machineId = headers[backhaulHeaders.machine];
  const app = headers[backhaulHeaders.app];
  const port = Number(headers[backhaulHeaders.port]);
  if (typeof machineId !== 'string' || typeof app !== 'string' || !Number.isInteger(port))
    return refused(
      stream,
      'PROXY_ERR_BAD_REQUEST',
      `a tcp stream names its machine, app and port (${backhaulHeaders.machine}, ${backhaulHeaders.app}, ${backhaulHeaders.port})`,
    );
  const { deps, options: relayOptions } = relay;
  const routing = routeApp(deps, app, { forceInstance: machineId, port });
  const routed = routing instanceof Promise ? await routing : routing;
  if (!routed.ok) return refused(stream, routed.code, routed.message);
  const here = routed.candidates.find((one) => one.machine.hostId === relayOptions.hostId);
  const address = here && serviceAddress(here.machine, here.service.internalPort);
  if (here === undefined || address === undefined)
    return refused(
      stream,
      'PROXY_ERR_NOT_ON_HOST',
      `machine ${machineId} of app ${app} is not on host ${relayOptions.hostId}`,
    );
  const machine = await connected(address, options.connectTimeoutMs);
  if (machine === undefined) {
    deps.catalog.machineUnreachable(machineId);
    return refused(stream, 'PROXY_ERR_UPSTREAM', `machine ${machineId} could not be reached`);
  }
  if (stream.destroyed) {
    machine.destroy();
    return;
  }
  deps.catalog.machineReachable(machineId);
  const refusal = chargeTunnel(relay.airtime, app, stream, machine);
  if (refusal !== undefined) {
    machine.destroy();
    return refused(stream, refusal.code, refusal.message);
  }
  const release = deps.catalog.begin(here.machine);
  stream.respond({ ':status': 200 });
  machine.setTimeout(options.idleTimeoutMs, () => machine.destroy());
  machine.on('error', () => machine.destroy());
  machine.once('close', () => {
    release();
    if (!stream.destroyed) stream.close();
  });
  stream.once('close', () => machine.destroy());
  stream.pipe(machine);
  machine.pipe(stream);
}

function connected(address: string, timeoutMs: number): Promise<Socket | undefined> {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    const socket = connect({ host, port: Number(address.slice(colon + 1)), noDelay: true });
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
    socket.once('close', () => resolve(undefined));
  });
}

function refused(stream: ServerHttp2Stream, code: string, message: string): void {
  if (stream.destroyed || stream.headersSent) return;
  const body = JSON.stringify({ error: message, code });
  stream.respond({
    ':status': statusOfCode(code),
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  stream.end(body);
}
