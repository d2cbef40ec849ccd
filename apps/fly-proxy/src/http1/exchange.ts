import type { Candidate, RouteOptions } from '@fleet/catalog';
import { present } from '@fleet/service/invariant';
import type { AppFlows, FlowSides } from '../airtime/throttle.js';
import { backhaulHeaders, backhaulTokenMatches, hopFor, serviceAddress } from '../backhaul.js';
import type { ProxyErrorCode } from '../errors.js';
import { statusOfCode } from '../errors.js';
import {
  parseReplay,
  replayBodyBytesMax,
  replaySource,
  replaysMax,
  routeReplay,
} from '../replay.js';
import { targetOf } from '../request-target.js';
import { idempotent, neverReached } from '../retry.js';
import {
  forcesHttps,
  httpsLocation,
  type Routed,
  routeApp,
  routeRequest,
} from '../route-request.js';
import { routingControls } from '../routing-controls.js';
import { BodyFramer, FramingError } from './body.js';
import type { ExchangeClient } from './exchange-client.js';
import { HeadError, parseResponseHead, type RequestHead, type ResponseHead } from './head.js';
import { deliveredHead, upstreamRequestHead } from './heads-out.js';
import type { Http1Options } from './relay.js';
import type { UpstreamConnection, UpstreamPools, UpstreamUser } from './upstream-pools.js';

const headEnd = Buffer.from('\r\n\r\n', 'latin1');

type Phase = 'routing' | 'waiting' | 'body' | 'tunnel' | 'done';

/**
 * One request relayed to one machine over a pooled keep-alive connection, and its response
 * relayed back, byte for byte (only the heads are rewritten). Bodies stream both ways with
 * backpressure; an `Upgrade` answered 101 becomes a tunnel. Attempts move to the next candidate
 * when the machine was never reached, or when an idempotent request without a body failed
 * before any answer (a stale keep-alive connection is retried once on a fresh one).
 */
export class Exchange implements UpstreamUser, FlowSides {
  readonly requestId: string;
  #phase: Phase = 'routing';
  #app = '';
  #candidates: Candidate[] = [];
  #candidate = 0;
  #upstream: UpstreamConnection | undefined;
  #releaseLoad: (() => void) | undefined;
  readonly #requestBody: BodyFramer;
  #pending: Buffer[] | null = [];
  #pendingBytes = 0;
  #bodyStarted = false;
  #continued = false;
  #responseBody: BodyFramer | undefined;
  #responseHead: Buffer | null = null;
  #upstreamReusable = true;
  #closeAfter = false;
  #clientEnded = false;
  #sentMs = 0;
  /** When the sweep last saw the machine send (set from #upstreamMoved: no clock read per read). */
  #lastUpstreamMs = 0;
  #upstreamMoved = false;
  #host = '';
  #path = '';
  // fly-replay: the body kept to send again (null past 1 MB), replays so far, what the next
  // attempt tells the machine, the fallback to the replaying machine, the replay's deadline.
  #replayBody: Buffer[] | null = [];
  #replayBytes = 0;
  #replays = 0;
  #replaySource: string | undefined;
  #replayFailed: string | undefined;
  #fallback: { mode: 'force_self' | 'prefer_self'; app: string; machineId: string } | undefined;
  #deadlineMs = 0;
  /** The current attempt goes through the machine's host's backhaul (edge mode). */
  #viaBackhaul = false;
  /** The address of this host's machine that refused a connection, for the 502's hint. */
  #refusedAt: string | undefined;
  /** Airtime admitted this exchange for its app: both directions are charged as bytes move. */
  #airtime: AppFlows | undefined;

  constructor(
    private readonly client: ExchangeClient,
    private readonly head: RequestHead,
  ) {
    // A backhaul keeps the edge's request id: one id for the request on every hop.
    const edgeId =
      client.relay.options.mode === 'backhaul'
        ? head.headers.find(([name]) => name === 'fly-request-id')?.[1]
        : undefined;
    this.requestId = edgeId ?? client.relay.requestId();
    this.#requestBody = new BodyFramer(head.framing);
  }

  start(rest: Buffer | null): void {
    if (rest !== null) {
      const after = this.clientData(rest);
      if (after !== null) this.client.buffer = after; // pipelined: read after this exchange
    }
    try {
      this.#route();
    } catch (error) {
      this.#crashed(error);
    }
  }

  /** Bytes from the client: this request's body, or (returned) what comes after it. */
  clientData(chunk: Buffer): Buffer | null {
    if (this.#phase === 'tunnel') {
      if (!this.#held().socket.write(chunk)) this.client.pauseReading();
      this.#airtime?.in(chunk.length);
      return null;
    }
    if (this.#requestBody.done) return chunk;
    let taken: number;
    try {
      taken = this.#requestBody.take(chunk);
    } catch (error) {
      if (!(error instanceof FramingError)) throw error;
      this.#fail('PROXY_ERR_BAD_REQUEST', error.message);
      return null;
    }
    const body = taken === chunk.length ? chunk : chunk.subarray(0, taken);
    this.#bodyStarted = true;
    // The machine's time to answer counts from the request's end, not from its head: a long
    // upload is not a slow machine.
    if (this.#requestBody.done) this.#sentMs = Date.now();
    if (this.#replayBody !== null) {
      const fits = this.#replayBytes + body.length <= replayBodyBytesMax;
      if (fits && this.client.relay.keepForReplay(body.length)) {
        this.#replayBytes += body.length;
        this.#replayBody.push(body);
      } else this.#dropReplayBody();
    }
    if (this.#pending === null) {
      if (this.#upstream !== undefined && !this.#upstream.socket.write(body))
        this.client.pauseReading();
    } else {
      this.#pending.push(body);
      this.#pendingBytes += body.length;
      if (this.#pendingBytes > this.client.relay.options.headBytesMax) this.client.pauseReading();
    }
    this.#airtime?.in(body.length);
    return taken === chunk.length ? null : chunk.subarray(taken);
  }

  clientDrained(): void {
    if (this.#airtime?.holdsMachine === true) return; // Airtime resumes it when tokens return
    if (this.#phase === 'body' || this.#phase === 'tunnel') this.#upstream?.socket.resume();
  }

  clientEnded(): void {
    this.#clientEnded = true;
    if (this.#phase === 'tunnel') this.#upstream?.socket.end();
    else if (!this.#requestBody.done) this.abort(); // the request can never be complete
  }

  /** The client is gone: drop the machine's connection mid-message, count nothing. */
  abort(): void {
    if (this.#phase === 'done') return;
    this.#phase = 'done';
    this.#dropReplayBody();
    this.#upstream?.release(false);
    this.#upstream = undefined;
    this.#releaseLoad?.();
    this.#airtime?.close();
    this.client.reset();
  }

  // --- UpstreamUser: what the machine's connection reports ---

  data(chunk: Buffer): void {
    this.#upstreamMoved = true;
    if (this.#phase === 'body') {
      this.#responseData(chunk);
      return;
    }
    if (this.#phase === 'tunnel') {
      if (!this.client.write(chunk)) this.#held().socket.pause();
      this.#airtime?.out(chunk.length);
      return;
    }
    if (this.#phase !== 'waiting') return;
    this.#responseHead =
      this.#responseHead === null ? chunk : Buffer.concat([this.#responseHead, chunk]);
    this.#readResponseHeads();
  }

  drain(): void {
    if (this.#airtime?.holdsClient !== true) this.client.resumeReading();
  }

  gone(error: Error | undefined): void {
    const phase = this.#phase;
    if (phase === 'waiting') return void this.#retryOrFail(error);
    if (phase === 'tunnel') {
      // A machine that reset the tunnel: the client's side is reset too, not closed cleanly.
      if (error !== undefined) return void this.abort();
      this.#upstream = undefined;
      this.#done(false);
      return;
    }
    if (phase !== 'body') return;
    this.#upstreamReusable = false;
    const body = present(this.#responseBody, 'the response body framer');
    if (error === undefined) body.ended();
    if (body.done) this.#finish();
    else this.abort(); // cut mid-body: the client must see a broken response, not a short one
  }

  /** Timeouts, from the relay's sweep. */
  sweep(nowMs: number): void {
    const { upstreamTimeoutMs, clientWriteTimeoutMs } = this.client.relay.options;
    if (this.#upstreamMoved) {
      this.#upstreamMoved = false;
      this.#lastUpstreamMs = nowMs;
    }
    const stalled = this.client.stalledSinceMs;
    if (stalled !== 0 && nowMs - stalled > clientWriteTimeoutMs) {
      this.client.relay.slowReaderCut();
      this.abort();
    } else if (
      this.#deadlineMs !== 0 &&
      nowMs > this.#deadlineMs &&
      (this.#phase === 'routing' || this.#phase === 'waiting')
    ) {
      this.#fail('PROXY_ERR_UPSTREAM_TIMEOUT', 'the replay did not reach a machine in time');
    } else if (
      this.#phase === 'waiting' &&
      this.#requestBody.done &&
      nowMs - this.#sentMs > upstreamTimeoutMs
    ) {
      this.#fail(
        'PROXY_ERR_UPSTREAM_TIMEOUT',
        `machine ${this.#machineId()} of app ${this.#app} did not answer in time`,
      );
    } else if (
      this.#phase === 'body' &&
      stalled === 0 &&
      this.#airtime?.paused !== true && // paused by Airtime: the machine is not the silent one
      nowMs - this.#lastUpstreamMs > upstreamTimeoutMs
    ) {
      this.abort();
    }
  }

  // --- FlowSides: what Airtime pauses and resumes ---

  pauseClient(): void {
    this.client.pauseReading();
  }

  resumeClient(): void {
    this.client.resumeReading();
  }

  pauseMachine(): void {
    this.#upstream?.socket.pause();
  }

  resumeMachine(): void {
    this.#upstream?.socket.resume();
  }

  // --- routing and attempts ---

  // Routing and connecting stay synchronous when the catalog holds the app and the pool an
  // idle connection (the common case): no promise per request on the hot path.
  #route(): void {
    const target = targetOf(this.head.target, this.head.hosts);
    if (!target.ok) {
      this.#own('PROXY_ERR_BAD_HOST', target.message);
      return;
    }
    this.#host = target.host;
    this.#path = target.path;
    if (this.client.relay.options.mode === 'backhaul') {
      this.#routeBackhaul();
      return;
    }
    const deps = this.client.relay.deps;
    const controls = routingControls(flyHeaders(this.head));
    if (this.client.servicePort !== undefined) controls.port = this.client.servicePort;
    const routed = routeRequest(deps, target.host, controls);
    if (routed instanceof Promise) routed.then((value) => this.#routed(value), this.#crashed);
    else this.#routed(routed);
  }

  #routed(routed: Routed): void {
    if (this.#phase === 'done') return;
    this.#app = routed.app;
    if (!routed.ok) {
      this.#own(routed.code, routed.message);
      return;
    }
    if (!this.#admitAirtime()) return;
    if (!this.client.encrypted && forcesHttps(routed.candidates)) {
      this.client.relay.deps.metrics.request(this.#app, 301);
      this.client.redirect(
        httpsLocation(this.#host, this.#path),
        this.requestId,
        !this.#keepAlive(),
      );
      this.#done(this.#keepAlive());
      return;
    }
    this.#candidates = routed.candidates;
    this.#attempt(false);
  }

  #attempt(fresh: boolean): void {
    const candidate = this.#candidates[this.#candidate];
    if (candidate === undefined) {
      this.#unreachable();
      return;
    }
    const hop = hopFor(candidate, this.client.relay.options.hostId);
    if (hop === undefined) {
      this.#candidate += 1; // no address to reach it by (yet): the next candidate
      this.#attempt(false);
      return;
    }
    this.#viaBackhaul = hop.viaBackhaul;
    const { pools, backhauls } = this.client.relay.deps;
    let acquired: ReturnType<UpstreamPools['acquire']>;
    try {
      acquired =
        hop.viaBackhaul && backhauls !== undefined
          ? backhauls.acquire(hop.address, candidate.machine.hostId, fresh)
          : pools.acquire(hop.address, fresh);
    } catch (error) {
      this.#notAcquired(candidate, error);
      return;
    }
    if (acquired instanceof Promise) {
      acquired.then(
        (connection) => this.#connected(candidate, connection),
        (error: unknown) => this.#notAcquired(candidate, error),
      );
    } else this.#connected(candidate, acquired);
  }

  #notAcquired(candidate: Candidate, error: unknown): void {
    if (this.#phase === 'done') return;
    const code = (error as { code?: string }).code;
    if (code === 'PROXY_POOL_TIMEOUT' || code === 'PROXY_POOL_FULL') {
      const reason = (error as Error).message;
      this.#own(
        'PROXY_ERR_MACHINE_BUSY',
        `machine ${candidate.machine.id} of app ${this.#app}: ${reason}`,
      );
      return;
    }
    this.#warn(error);
    if (code === 'ECONNREFUSED' && !this.#viaBackhaul)
      this.#refusedAt = serviceAddress(candidate.machine, candidate.service.internalPort);
    // Refused, unreachable, timed out: ranked last until it answers again (the catalog's TTL).
    if (neverReached(error))
      this.client.relay.deps.catalog.machineUnreachable(candidate.machine.id);
    this.#candidate += 1;
    this.#attempt(false);
  }

  #connected(candidate: Candidate, connection: UpstreamConnection): void {
    if (this.#phase === 'done') {
      connection.release(true);
      return;
    }
    this.#upstream = connection;
    connection.user = this;
    const deps = this.client.relay.deps;
    this.#releaseLoad = deps.catalog.begin(candidate.machine);
    deps.autostop?.served(candidate.machine);
    this.#phase = 'waiting';
    this.#sentMs = Date.now();
    const socket = connection.socket;
    const pending = present(this.#pending, 'the request bytes held for the machine');
    this.#pending = null;
    if (pending.length > 0) socket.cork();
    socket.write(this.#requestHeadOut(), 'latin1');
    for (const body of pending) socket.write(body);
    if (pending.length > 0) socket.uncork();
    // Sent even when the body came along: a client waiting for it then need not time out.
    if (this.head.expectContinue && this.head.framing.kind !== 'none' && !this.#continued) {
      this.#continued = true;
      this.client.sendContinue();
    }
    if (this.#airtime?.holdsClient !== true) this.client.resumeReading();
  }

  readonly #crashed = (error: unknown): void => {
    this.client.relay.deps.logger.error({ err: error, requestId: this.requestId }, 'relay failed');
    this.#own('PROXY_ERR_UPSTREAM', 'the proxy failed to relay the request', true);
  };

  #requestHeadOut(): string {
    const { options } = this.client.relay;
    if (options.mode === 'backhaul') return deliveredHead(this.head);
    const client = this.client;
    const { machine, service } = this.#attempted();
    return upstreamRequestHead(this.head, {
      host: this.#host,
      path: this.#path,
      clientIp: client.clientIp,
      localPort: client.localPort,
      encrypted: client.encrypted,
      http2: client.http2,
      requestId: this.requestId,
      region: this.client.relay.deps.region,
      replaySource: this.#replaySource,
      replayFailed: this.#replayFailed,
      backhaul: this.#viaBackhaul
        ? {
            machineId: machine.id,
            app: machine.app,
            token: backhaulToken(options),
            internalPort: service.internalPort,
          }
        : undefined,
    });
  }

  /**
   * Backhaul mode: the edge named the machine and its app; deliver only to a machine of this
   * host, only for an edge that holds the fleet key.
   */
  #routeBackhaul(): void {
    const named = (wanted: string) => this.head.headers.find(([name]) => name === wanted)?.[1];
    const { options, deps } = this.client.relay;
    if (!backhaulTokenMatches(named(backhaulHeaders.auth), backhaulToken(options))) {
      this.#own(
        'PROXY_ERR_BACKHAUL_AUTH',
        'the backhaul takes requests from edges of this fleet only',
      );
      return;
    }
    const machineId = named(backhaulHeaders.machine);
    const app = named(backhaulHeaders.app);
    if (!machineId || !app) {
      this.#own(
        'PROXY_ERR_BAD_REQUEST',
        `a backhaul request names its machine and app (${backhaulHeaders.machine}, ${backhaulHeaders.app})`,
      );
      return;
    }
    const delivered = (routed: Routed) => {
      if (this.#over()) return;
      this.#app = routed.app;
      if (!routed.ok) {
        this.#own(routed.code, routed.message);
        return;
      }
      const here = routed.candidates.filter((one) => one.machine.hostId === options.hostId);
      if (here.length === 0) {
        this.#own(
          'PROXY_ERR_NOT_ON_HOST',
          `machine ${machineId} of app ${app} is not on host ${options.hostId}`,
        );
        return;
      }
      if (!this.#admitAirtime()) return;
      this.#candidates = here;
      this.#attempt(false);
    };
    // The service the edge chose (an edge before it named none: the first HTTP one).
    const internalPort = Number(named(backhaulHeaders.service)) || undefined;
    const routing = routeApp(deps, app, { forceInstance: machineId, internalPort });
    if (routing instanceof Promise) routing.then(delivered, this.#crashed);
    else delivered(routing);
  }

  #retryOrFail(error: Error | undefined): void {
    const connection = this.#held();
    this.#upstream = undefined;
    this.#releaseLoad?.();
    this.#releaseLoad = undefined;
    this.#warn(error);
    const resendable =
      !this.#bodyStarted && idempotent(this.head.method) && this.#responseHead === null;
    if (!resendable) {
      this.#unreachable();
      return;
    }
    this.#phase = 'routing';
    this.#pending = [];
    if (!connection.reused) this.#candidate += 1; // a stale keep-alive race: same machine, fresh
    this.#attempt(connection.reused);
  }

  #unreachable(): void {
    this.#own(
      'PROXY_ERR_UPSTREAM',
      `machine ${this.#machineId()} of app ${this.#app} could not be reached${refusedHint(this.#refusedAt)}`,
    );
  }

  // --- the response ---

  #readResponseHeads(): void {
    for (let buffer = this.#responseHead; buffer !== null; buffer = this.#responseHead) {
      const end = buffer.indexOf(headEnd);
      if (end < 0) {
        if (buffer.length > this.client.relay.options.headBytesMax)
          this.#fail('PROXY_ERR_UPSTREAM', 'the machine answered a head too large');
        return;
      }
      let head: ResponseHead;
      try {
        head = parseResponseHead(buffer.toString('latin1', 0, end), this.head.method);
      } catch (error) {
        if (!(error instanceof HeadError)) throw error;
        this.#fail('PROXY_ERR_UPSTREAM', `machine ${this.#machineId()}: ${error.message}`);
        return;
      }
      const rest = end + 4 === buffer.length ? null : buffer.subarray(end + 4);
      this.#responseHead = rest;
      if (head.status === 101) {
        this.#tunnel(head, rest);
        return;
      }
      if (head.status >= 200) {
        const replay = head.headers.find(([name]) => name === 'fly-replay');
        if (replay !== undefined) this.#replay(replay[1]).catch(this.#crashed);
        else this.#respond(head, rest);
        return;
      }
      // 1xx: 100 was the proxy's to send (Expect is answered here); others (103) pass on.
      if (head.status !== 100) this.client.sendInformational(head, this.requestId);
    }
  }

  #respond(head: ResponseHead, rest: Buffer | null): void {
    const { metrics } = this.client.relay.deps;
    metrics.request(this.#app, head.status);
    metrics.upstream(this.#app, Date.now() - this.#sentMs);
    const request = this.head;
    this.#closeAfter =
      request.connection.includes('close') ||
      (request.minor === 0 && !request.connection.includes('keep-alive')) ||
      head.framing.kind === 'close' ||
      this.#clientEnded ||
      this.client.relay.draining;
    const connection = this.#closeAfter ? 'close' : request.minor === 0 ? 'keep-alive' : undefined;
    const machine = this.#attempted().machine;
    this.client.relay.deps.catalog.machineReachable(machine.id);
    if (this.#viaBackhaul) {
      const load = Number(head.headers.find(([name]) => name === backhaulHeaders.load)?.[1]);
      if (Number.isFinite(load)) this.client.relay.deps.catalog.reportLoad(machine.id, load);
    }
    // A backhaul tells the edge its machine's load (all edges' traffic, this request included).
    const extra =
      this.client.relay.options.mode === 'backhaul'
        ? `${backhaulHeaders.load}: ${machine.load}\r\n`
        : undefined;
    this.#upstreamReusable =
      request.minor === 1 && head.minor === 1 && !head.connection.includes('close');
    this.#phase = 'body';
    const body = new BodyFramer(head.framing);
    this.#responseBody = body;
    // Head and the body bytes that came with it leave in one write, not two.
    const first = rest === null ? null : this.#bodyPart(body, rest);
    if (first === undefined) return;
    if (!this.client.sendHead(head, this.requestId, connection, extra, first))
      this.#upstream?.socket.pause();
    if (body.done) this.#finish();
  }

  #responseData(chunk: Buffer): void {
    const body = present(this.#responseBody, 'the response body framer');
    const part = this.#bodyPart(body, chunk);
    if (part === undefined) return;
    if (part !== null && !this.client.sendBody(part)) this.#upstream?.socket.pause();
    if (body.done) this.#finish();
  }

  /**
   * The part of `chunk` that belongs to the response body (null when none), charged to Airtime;
   * bytes past the response leave the connection unusable for another request. Undefined when
   * the machine broke chunked framing: the exchange is cut, never passed on.
   */
  #bodyPart(body: BodyFramer, chunk: Buffer): Buffer | null | undefined {
    let taken: number;
    try {
      taken = body.take(chunk);
    } catch {
      this.abort();
      return undefined;
    }
    if (taken < chunk.length) this.#upstreamReusable = false;
    this.#airtime?.out(taken);
    return taken === 0 ? null : taken === chunk.length ? chunk : chunk.subarray(0, taken);
  }

  #tunnel(head: ResponseHead, rest: Buffer | null): void {
    if (this.head.upgrade === undefined) {
      this.#fail('PROXY_ERR_UPSTREAM', 'the machine switched protocols unasked');
      return;
    }
    const refusal = this.client.upgradeRefusal(head);
    if (refusal !== undefined) {
      this.#fail('PROXY_ERR_UPSTREAM', `machine ${this.#machineId()}: ${refusal}`);
      return;
    }
    this.client.relay.deps.metrics.request(this.#app, 101);
    this.#phase = 'tunnel';
    const upgrade = head.headers.find(([name]) => name === 'upgrade')?.[1] ?? this.head.upgrade;
    this.client.sendUpgrade(head, this.requestId, upgrade);
    if (rest !== null) this.client.write(rest);
    const buffered = this.client.buffer;
    this.client.buffer = null;
    const upstream = this.#held();
    if (buffered !== null) upstream.socket.write(buffered);
    if (this.#clientEnded) upstream.socket.end(); // the client half-closed already
    this.client.resumeReading(); // an HTTP/2 client paused while its early bytes waited
  }

  #finish(): void {
    const reusable = this.#upstreamReusable && this.#requestBody.done;
    this.#upstream?.release(reusable);
    this.#upstream = undefined;
    this.client.endBody();
    this.#done(!this.#closeAfter && this.#requestBody.done);
  }

  #done(keepAlive: boolean): void {
    this.#phase = 'done';
    this.#dropReplayBody();
    this.#releaseLoad?.();
    this.#airtime?.close();
    this.client.exchangeDone(keepAlive);
  }

  /** An answer of the proxy's own before any of the machine's reached the client. */
  #own(
    code: ProxyErrorCode | Extract<Routed, { ok: false }>['code'],
    message: string,
    close = false,
  ): void {
    if (this.#phase === 'done') return;
    this.#upstream?.release(false);
    this.#upstream = undefined;
    if (this.#fallback !== undefined) {
      this.#fallBack(`${code}: ${message}`).catch(this.#crashed);
      return;
    }
    const status = statusOfCode(code);
    this.client.relay.deps.metrics.request(this.#app, status);
    const keepAlive = !close && this.#keepAlive();
    this.client.answer(status, code, message, this.requestId, !keepAlive);
    this.#done(keepAlive);
  }

  // --- fly-replay ---

  /**
   * The machine answered with `fly-replay`: its answer is dropped (its connection closed) and
   * the request, body included, goes where the header says, with `fly-replay-src`.
   */
  async #replay(value: string): Promise<void> {
    const from = this.#attempted().machine;
    this.#upstream?.release(false);
    this.#upstream = undefined;
    this.#releaseLoad?.();
    this.#releaseLoad = undefined;
    this.#phase = 'routing';
    this.#responseHead = null;
    const directive = parseReplay(value);
    this.#replays += 1;
    this.client.relay.replayed();
    const refusal =
      typeof directive === 'string'
        ? directive
        : this.#replays > replaysMax
          ? `the request was replayed more than ${replaysMax} times`
          : !this.#requestBody.done
            ? 'the machine asked for a replay before the request body was received'
            : this.#replayBody === null
              ? `the request body was not kept (over ${replayBodyBytesMax} bytes, or the proxy's replay memory was full)`
              : undefined;
    if (refusal !== undefined || typeof directive === 'string') {
      this.#own('PROXY_ERR_REPLAY', `machine ${from.id} of app ${this.#app}: ${refusal}`);
      return;
    }
    const deps = this.client.relay.deps;
    this.#replaySource = replaySource(from.id, from.region, directive.state);
    this.#deadlineMs = directive.timeoutMs === undefined ? 0 : Date.now() + directive.timeoutMs;
    if (directive.fallback !== undefined)
      this.#fallback = { mode: directive.fallback, app: this.#app, machineId: from.id };
    const routed = await routeReplay(deps, directive, {
      app: this.#app,
      machineId: from.id,
      port: this.client.servicePort,
    });
    if (this.#over()) return;
    this.#resend(routed);
  }

  /** A replay that failed goes back to the machine that asked for it, as its fallback says. */
  async #fallBack(reason: string): Promise<void> {
    const { mode, app, machineId } = present(this.#fallback, 'the replay fallback');
    this.#fallback = undefined;
    this.#releaseLoad?.();
    this.#releaseLoad = undefined;
    this.#phase = 'routing';
    this.#deadlineMs = 0;
    this.#replayFailed = reason.replace(/[\r\n]/g, ' ');
    const options: RouteOptions =
      mode === 'force_self' ? { forceInstance: machineId } : { preferInstance: machineId };
    // Back to the service the request came in for, on the machine that asked.
    if (this.client.servicePort !== undefined) options.port = this.client.servicePort;
    const routing = routeApp(this.client.relay.deps, app, options);
    const routed = routing instanceof Promise ? await routing : routing;
    if (this.#over()) return;
    this.#resend(routed);
  }

  /** Sends the kept request again to freshly routed candidates. */
  #resend(routed: Routed): void {
    this.#app = routed.app || this.#app;
    if (!routed.ok) {
      this.#own(routed.code, routed.message);
      return;
    }
    this.#candidates = routed.candidates;
    this.#candidate = 0;
    this.#pending = [...(this.#replayBody ?? [])];
    this.#attempt(false);
  }

  /** A failure after the request was sent: answered if the client has seen nothing yet. */
  #fail(code: ProxyErrorCode, message: string): void {
    if (this.#phase === 'body' || this.#phase === 'tunnel') this.abort();
    else this.#own(code, message, true);
  }

  /** Whether the client connection can carry another request after the proxy's own answer. */
  #keepAlive(): boolean {
    return (
      this.#requestBody.done &&
      !this.head.connection.includes('close') &&
      this.head.minor === 1 &&
      !this.client.relay.draining
    );
  }

  /**
   * Airtime (src/airtime): admits the exchange for its app once (a replay keeps its slot), or
   * answers 503 past the app's hard cap. False when refused.
   */
  #admitAirtime(): boolean {
    const airtime = this.client.relay.airtime;
    if (airtime === undefined || this.#airtime !== undefined) return true;
    const admitted = airtime.admit(this.#app, this);
    if ('code' in admitted) {
      this.#own(admitted.code, admitted.message);
      return false;
    }
    this.#airtime = admitted;
    return true;
  }

  /** Gives the kept body's bytes back to the relay's replay budget. */
  #dropReplayBody(): void {
    this.client.relay.releaseReplay(this.#replayBytes);
    this.#replayBytes = 0;
    this.#replayBody = null;
  }

  /** Whether the exchange ended meanwhile (the client left) — for checks after an await. */
  #over(): boolean {
    return this.#phase === 'done';
  }

  /** The machine connection of the exchange, where the phase says one is held. */
  #held(): UpstreamConnection {
    return present(this.#upstream, 'the machine connection of the exchange');
  }

  /** The candidate of the current attempt (after routing chose it). */
  #attempted(): Candidate {
    return present(this.#candidates[this.#candidate], 'the attempted candidate');
  }

  #machineId(): string {
    return (
      this.#candidates[this.#candidate]?.machine.id ?? this.#candidates.at(-1)?.machine.id ?? 'none'
    );
  }

  #warn(error: unknown): void {
    this.client.relay.deps.logger.warn(
      { err: error, app: this.#app, machine: this.#machineId(), requestId: this.requestId },
      'upstream failed',
    );
  }
}

/** The fleet-key token, which main.ts requires with `--host-id` and in backhaul mode. */
function backhaulToken(options: Http1Options): string {
  return present(options.backhaulToken, 'the backhaul token (--fleet-key-file)');
}

/** Fly's routing headers of a request, as routingControls reads them. */
function flyHeaders(head: RequestHead): Record<string, string> {
  let headers: Record<string, string> | undefined;
  for (const [name, value] of head.headers) {
    if (!name.startsWith('fly-')) continue;
    headers ??= {};
    if (headers[name] === undefined) headers[name] = value;
  }
  return headers ?? noFlyHeaders;
}

const noFlyHeaders: Record<string, string> = Object.freeze({});

/**
 * Why a machine refused, as Fly's proxy hints: one in a network of its own is reached at its own
 * address, where a server listening on 127.0.0.1 only is out of reach; one on the worker's
 * loopback (flyd without networks) listens on its `PORT`.
 */
function refusedHint(address: string | undefined): string {
  if (address === undefined) return '';
  const port = address.slice(address.lastIndexOf(':') + 1);
  return address.startsWith('127.0.0.1:')
    ? ` (it refused the connection: is the app listening on its PORT, ${port}?)`
    : ` (it refused the connection: is the app listening on 0.0.0.0:${port}, not on 127.0.0.1 only?)`;
}
