#!/usr/bin/env node
import { Catalog } from '@fleet/catalog';
import { CorrosionClient } from '@fleet/corrosion-client';
import { readFleetKeyFile } from '@fleet/fleet-key';
import {
  announceListening,
  createHttpServer,
  createLogger,
  defaultHttpLimits,
  listenHttp,
  onShutdown,
  parseConfig,
  parseListenAddress,
  readSecret,
  runMain,
  startMetrics,
  UsageError,
} from '@fleet/service';
import { Airtime } from './airtime/airtime.js';
import { registerAirtimeMetrics } from './airtime/airtime-metrics.js';
import { airtimeLimits, airtimeSpec } from './airtime/config.js';
import { Autostarter } from './autoscale/autostart.js';
import { Autostopper } from './autoscale/autostop.js';
import { FlapsApi } from './autoscale/flaps-api.js';
import { backhaulToken } from './backhaul.js';
import { BackhaulSessions, backhaulWindowBytes } from './backhaul-session.js';
import { backhaulStreamHandler } from './backhaul-streams.js';
import { startControl } from './control/server.js';
import { Drain } from './drain.js';
import { onWatchdog, supervised, tellWatchdog } from './handoff/generation.js';
import {
  applySharedTicketKeys,
  askWatchdogForRestart,
  controlSocketFor,
} from './handoff/generation-setup.js';
import { Http1Relay } from './http1/relay.js';
import { UpstreamPools } from './http1/upstream-pools.js';
import { http2ServerOptions } from './http2/server-options.js';
import { registerInstanceMetrics } from './instance-metrics.js';
import { ProxyMetrics } from './metrics.js';
import { becomeTheInstance } from './one-instance.js';
import type { ProxyDeps } from './proxy-deps.js';
import { ServicePorts } from './tcp/service-ports.js';
import { TcpListeners } from './tcp/tcp-listeners.js';
import {
  type CertificateStore,
  createPlainListener,
  type StreamHandler,
  startTls,
  tlsMetrics,
  tlsSpec,
} from './tls/index.js';

const spec = {
  mode: {
    type: 'string',
    default: 'edge',
    choices: ['edge', 'backhaul'],
    description: 'edge (takes user traffic) or backhaul (delivers what edges send to this host)',
  },
  'host-id': {
    type: 'string',
    default: '',
    description:
      'this host (a hosts row): machines of other hosts are reached through their backhaul; needs --fleet-key-file',
  },
  listen: {
    type: 'string',
    format: 'address',
    default: '127.0.0.1:8080',
    description: 'listener for user traffic (HTTP/1.1 and h2c with prior knowledge)',
  },
  catalog: {
    type: 'string',
    default: 'lazy',
    choices: ['lazy', 'eager'],
    description: 'lazy (load an app on its first request) or eager (hold every app)',
  },
  'admin-listen': {
    type: 'string',
    format: 'address',
    default: '127.0.0.1:0',
    description: 'listener for /metrics and /status',
  },
  'corrosion-url': {
    type: 'string',
    format: 'url',
    required: true,
    description: 'base URL of the local corrosion API',
  },
  'corrosion-token-file': {
    type: 'string',
    description: 'file holding the bearer token of the corrosion API; or set CORROSION_TOKEN',
  },
  domain: {
    type: 'string',
    default: 'localhost',
    description: 'fleet domain: <app>.<domain> names an app',
  },
  region: {
    type: 'string',
    default: 'local',
    description: 'region of this proxy (sent as fly-region)',
  },
  'connect-timeout-ms': {
    type: 'number',
    default: 5_000,
    min: 1,
    max: 600_000,
    description: 'bound on connecting to a machine',
  },
  'upstream-timeout-ms': {
    type: 'number',
    default: 60_000,
    min: 1,
    max: 3_600_000,
    description: 'bound on a machine answering headers, and on body silence',
  },
  'connections-per-upstream': {
    type: 'number',
    default: 64,
    min: 1,
    max: 4_096,
    description: 'connections kept to one machine',
  },
  'backhaul-streams-max': {
    type: 'number',
    default: 1_000,
    min: 1,
    max: 100_000,
    description:
      'streams in flight on one edge-backhaul HTTP/2 session (SETTINGS_MAX_CONCURRENT_STREAMS a backhaul announces; an edge keeps to it, requests past it wait as for a busy machine)',
  },
  'backhaul-ping-interval-ms': {
    type: 'number',
    default: 5_000,
    min: 100,
    max: 600_000,
    description: 'how often an edge PINGs each backhaul session to measure the RTT to its host',
  },
  'backhaul-ping-timeout-ms': {
    type: 'number',
    default: 5_000,
    min: 100,
    max: 600_000,
    description:
      'a backhaul session whose PING goes unanswered this long is closed (a silent network cut); the next request connects anew',
  },
  'upstreams-max': {
    type: 'number',
    default: 4_096,
    min: 1,
    max: 1_000_000,
    description: 'machines with open connection pools',
  },
  'catalog-write-timeout-ms': {
    type: 'number',
    default: 5_000,
    min: 1,
    max: 600_000,
    description: 'bound on each catalog update',
  },
  'upstream-wait-timeout-ms': {
    type: 'number',
    default: 5_000,
    min: 1,
    max: 600_000,
    description: "bound on waiting for a connection when all of a machine's are busy (503 past it)",
  },
  'upstream-waiters-max': {
    type: 'number',
    default: 1_024,
    min: 0,
    max: 1_000_000,
    description: "requests waiting for one machine's connections; past it 503 at once",
  },
  'upstream-idle-timeout-ms': {
    type: 'number',
    default: 3_000,
    min: 1,
    max: 600_000,
    description: 'a pooled connection to a machine unused this long is closed',
  },
  'client-headers-timeout-ms': {
    type: 'number',
    default: 10_000,
    min: 1,
    max: 600_000,
    description: 'a request head not complete this long after its first byte: 408 (slowloris)',
  },
  'client-write-timeout-ms': {
    type: 'number',
    default: 30_000,
    min: 1,
    max: 3_600_000,
    description: 'a client that reads nothing of a response this long is cut (slow readers)',
  },
  'replay-bodies-bytes-max': {
    type: 'number',
    default: 67_108_864,
    min: 0,
    max: 17_179_869_184,
    description: 'request bodies kept for fly-replay, all requests together (each up to 1 MB)',
  },
  'header-bytes-max': {
    type: 'number',
    default: 65_536,
    min: 1_024,
    max: 1_048_576,
    description: 'bound on a request or response head; a larger request head is 431',
  },
  'flaps-url': {
    type: 'string',
    default: '',
    description: 'the Machines API, for autostart and autostop (off when empty)',
  },
  'flaps-token-file': {
    type: 'string',
    description: 'file holding the Machines API token; or set FLEET_API_TOKEN',
  },
  'autostart-timeout-ms': {
    type: 'number',
    default: 10_000,
    min: 100,
    max: 600_000,
    description: 'bound on a request waiting for a stopped machine to start',
  },
  'autostarts-max': {
    type: 'number',
    default: 32,
    min: 1,
    max: 10_000,
    description: 'machines being started at once by this proxy',
  },
  'autostop-interval-ms': {
    type: 'number',
    default: 300_000,
    min: 100,
    max: 86_400_000,
    description: 'how often one excess machine per region is stopped or suspended',
  },
  'tcp-bind': {
    type: 'string',
    default: '',
    description:
      'address the public ports of services (raw TCP, proxy_proto, tls, http on other ports) are bound on (off when empty)',
  },
  'tcp-ports-max': {
    type: 'number',
    default: 64,
    min: 1,
    max: 10_000,
    description: 'public ports listened on at most',
  },
  'admin-in-flight-max': {
    type: 'number',
    default: 64,
    min: 1,
    max: 100_000,
    description: 'admin requests handled at once; past it 503 PROXY_ERR_OVERLOADED',
  },
  ...tlsSpec,
  // Control channel (issue 13): see the README's "Control channel and watchdog".
  standby: {
    type: 'boolean',
    default: false,
    description:
      'when another proxy holds --state-dir, wait until it is gone and take over (without it: exit naming the holder)',
  },
  'drain-grace-ms': {
    type: 'number',
    default: 5_000,
    min: 0,
    max: 600_000,
    description:
      'draining: idle keep-alive connections are closed this long after the drain starts',
  },
  'drain-deadline-ms': {
    type: 'number',
    default: 60_000,
    min: 1,
    max: 86_400_000,
    description:
      'draining: tunnels and requests still open this long after the drain starts are cut, and the proxy exits',
  },
  ...airtimeSpec,
  'state-dir': {
    type: 'string',
    default: '.fleet/fly-proxy',
    description:
      'directory of the lock that makes this the one active proxy, and of the control socket (control.sock)',
  },
} as const;

/** The Machines API client for autostart and autostop, when `--flaps-url` is set. */
function machinesApi(config: {
  'flaps-url': string;
  'flaps-token-file'?: string;
  'autostart-timeout-ms': number;
}) {
  if (config['flaps-url'] === '') return undefined;
  if (!URL.canParse(config['flaps-url']))
    throw new UsageError(`--flaps-url ${config['flaps-url']} is not a URL`);
  const token = readSecret({
    fileFlag: 'flaps-token-file',
    file: config['flaps-token-file'],
    variable: 'FLEET_API_TOKEN',
  });
  return new FlapsApi(config['flaps-url'], token, config['autostart-timeout-ms']);
}

/** The listeners of services' public ports, when `--tcp-bind` is set (edge mode). */
function startTcpListeners(
  config: {
    mode: string;
    'tcp-bind': string;
    'tcp-ports-max': number;
    'connect-timeout-ms': number;
    'idle-timeout-ms': number;
  },
  deps: ProxyDeps,
  relay: Http1Relay,
  store: CertificateStore | undefined,
  corrosion: CorrosionClient,
  signal: AbortSignal,
  hostId: string | undefined,
  drain: { readonly draining: boolean },
) {
  if (config['tcp-bind'] === '' || config.mode !== 'edge') return undefined;
  const listeners = new TcpListeners(
    deps,
    relay,
    {
      bindHost: config['tcp-bind'],
      portsMax: config['tcp-ports-max'],
      connectTimeoutMs: config['connect-timeout-ms'],
      idleTimeoutMs: config['idle-timeout-ms'],
      hostId,
    },
    store?.sniCallback,
  );
  // A draining proxy opens no port again (corrosion may still announce one).
  const ports = new ServicePorts(deps.logger, (next) => {
    if (!drain.draining) listeners.sync(next);
  });
  const followed = ports.follow(corrosion, signal).catch((error: unknown) => {
    deps.logger.error({ err: error }, 'cannot follow the services ports');
  });
  return { listeners, followed };
}

runMain(async () => {
  const config = parseConfig(
    {
      name: 'fly-proxy',
      summary: 'The Fleet router: sends each request to a started machine of its app.',
    },
    spec,
  );
  if (!config) return;
  const hostId = config['host-id'] || undefined;
  if (hostId !== undefined && config['fleet-key-file'] === undefined)
    throw new UsageError('--host-id needs --fleet-key-file (edges and backhauls share its token)');
  if (config.mode === 'backhaul' && hostId === undefined)
    throw new UsageError('--mode backhaul needs --host-id (the host whose machines it serves)');
  // One active proxy per state directory (seed 004), taken before anything listens.
  const logger = createLogger('fly-proxy');
  if (config.standby && config['strict-second-instance'])
    throw new UsageError('give --standby or --strict-second-instance, not both');
  const instance = await becomeTheInstance(
    config['state-dir'],
    {
      standby: config.standby,
      strictSecond: config['strict-second-instance'],
      generation: supervised,
    },
    logger,
  );
  const corrosionToken = readSecret({
    fileFlag: 'corrosion-token-file',
    file: config['corrosion-token-file'],
    variable: 'CORROSION_TOKEN',
  });
  const proxyAddress = parseListenAddress(config.listen);
  const metrics = startMetrics('fly-proxy');
  const catalog = new Catalog({
    domain: config.domain,
    region: config.region,
    mode: config.catalog,
    logger,
    writeTimeoutMs: config['catalog-write-timeout-ms'],
  });
  const corrosion = new CorrosionClient({
    url: config['corrosion-url'],
    token: corrosionToken,
  });
  const following = new AbortController();
  const followed = catalog.follow(corrosion, following.signal).catch((error: unknown) => {
    logger.fatal({ err: error }, 'catalog cannot follow corrosion');
    process.exit(1);
  });
  const pools = new UpstreamPools({
    connectionsPerUpstream: config['connections-per-upstream'],
    upstreamsMax: config['upstreams-max'],
    connectTimeoutMs: config['connect-timeout-ms'],
    waitTimeoutMs: config['upstream-wait-timeout-ms'],
    waitersMax: config['upstream-waiters-max'],
    idleTimeoutMs: config['upstream-idle-timeout-ms'],
  });
  const flaps = config.mode === 'edge' ? machinesApi(config) : undefined;
  // One request's bug must not take the whole edge down (Node's default for an unhandled
  // rejection is to exit): log it with its stack, count it, keep serving.
  const proxyMetrics = new ProxyMetrics();
  process.on('unhandledRejection', (reason) => {
    logger.error({ err: reason }, 'unhandled promise rejection (a bug): logged, not fatal');
    proxyMetrics.unhandledRejection();
  });
  const deps: ProxyDeps = {
    catalog,
    pools,
    region: config.region,
    metrics: proxyMetrics,
    logger,
  };
  if (flaps !== undefined) {
    const autostart = {
      timeoutMs: config['autostart-timeout-ms'],
      startsMax: config['autostarts-max'],
    };
    deps.autostart = new Autostarter(catalog, flaps, autostart, logger);
    const autostop = { intervalMs: config['autostop-interval-ms'], appsMax: 10_000 };
    deps.autostop = new Autostopper(catalog, flaps, autostop, logger);
  }
  const fleetKeyFile = config['fleet-key-file'];
  const token =
    hostId === undefined || fleetKeyFile === undefined
      ? undefined
      : backhaulToken(readFleetKeyFile(fleetKeyFile));
  if (token !== undefined && config.mode === 'edge') {
    const limits = {
      connectTimeoutMs: config['connect-timeout-ms'],
      streamsMax: config['backhaul-streams-max'],
      waitTimeoutMs: config['upstream-wait-timeout-ms'],
      waitersMax: config['upstream-waiters-max'],
      pingIntervalMs: config['backhaul-ping-interval-ms'],
      pingTimeoutMs: config['backhaul-ping-timeout-ms'],
      idleTimeoutMs: config['upstream-idle-timeout-ms'],
      sessionsMax: config['upstreams-max'],
    };
    const rtt = (host: string, rttMs: number) => catalog.recordRtt(host, rttMs);
    deps.backhauls = new BackhaulSessions(limits, token, rtt, logger);
  }
  const relay = new Http1Relay(deps, {
    mode: config.mode,
    hostId,
    backhaulToken: token,
    headBytesMax: config['header-bytes-max'],
    clientHeadersTimeoutMs: config['client-headers-timeout-ms'],
    clientWriteTimeoutMs: config['client-write-timeout-ms'],
    upstreamTimeoutMs: config['upstream-timeout-ms'],
    replayBodiesBytesMax: config['replay-bodies-bytes-max'],
  });
  // Airtime (seed 004): strict limits when forced beside the active proxy.
  const airtime = new Airtime(
    airtimeLimits(config, instance.kind === 'strict-second' ? instance.holder : undefined),
    logger,
  );
  relay.airtime = airtime;
  registerAirtimeMetrics(airtime);
  const http2: StreamHandler =
    config.mode === 'backhaul'
      ? backhaulStreamHandler(relay, {
          connectTimeoutMs: config['connect-timeout-ms'],
          idleTimeoutMs: config['idle-timeout-ms'],
        })
      : (stream, headers, _flags, rawHeaders) => relay.serveStream(stream, headers, rawHeaders);
  // An edge takes WebSocket over HTTP/2 (RFC 8441's extended CONNECT); a backhaul bounds the
  // streams of each edge's session.
  const http2Options = http2ServerOptions(
    config['header-bytes-max'],
    config.mode === 'backhaul'
      ? {
          maxConcurrentStreams: config['backhaul-streams-max'],
          initialWindowSize: backhaulWindowBytes,
        }
      : { enableConnectProtocol: true },
  );
  const plain = createPlainListener({
    http2,
    http2Options,
    http1: (socket) => relay.serve(socket),
    logger,
    metrics: tlsMetrics(),
    idleTimeoutMs: config['idle-timeout-ms'],
    wakeupsWithoutProgressMax: config['wakeups-without-progress-max'],
  });
  const tls = await startTls(config.mode === 'edge' ? config : { ...config, 'tls-listen': '' }, {
    corrosion,
    http2,
    http2Options,
    http1: (socket) => relay.serve(socket),
    logger,
  });
  if (tls !== undefined) applySharedTicketKeys(tls.listener.server);
  const tcp = startTcpListeners(
    config,
    deps,
    relay,
    tls?.store,
    corrosion,
    following.signal,
    hostId,
    {
      get draining() {
        return drain.draining;
      },
    },
  );
  const drain = new Drain(
    [
      { stopAccepting: () => plain.stopAccepting(), connections: () => plain.guard.size },
      ...(tls === undefined
        ? []
        : [
            {
              stopAccepting: () => tls.listener.stopAccepting(),
              connections: () => tls.listener.guard.size,
            },
          ]),
      ...(tcp === undefined
        ? []
        : [
            {
              stopAccepting: () => tcp.listeners.close(),
              connections: () => tcp.listeners.stats().connections,
            },
          ]),
    ],
    () => relay.closeIdle(),
    { graceMs: config['drain-grace-ms'], deadlineMs: config['drain-deadline-ms'] },
    logger,
  );
  drain.started = () => {
    relay.draining = true;
    // A generation's successor serves /metrics and /status on the same shared socket.
    if (supervised) void closeAdmin();
  };
  // Drained (or at the deadline): the same shutdown as SIGTERM, which cuts what is left; exit 0.
  drain.finished = () => process.kill(process.pid, 'SIGTERM');
  const instanceFacts = () => ({
    state: drain.status().state,
    instance: instance.kind,
    strict: airtime.strictStats(),
    drain: drain.status(),
  });
  registerInstanceMetrics(() => drain.draining, airtime.strict);
  let adminClosed: Promise<void> | undefined;
  const closeAdmin = () => {
    adminClosed ??= admin.close().then(() => undefined);
    return adminClosed;
  };
  const admin = createHttpServer({
    logger,
    metrics,
    limits: defaultHttpLimits('PROXY_ERR_OVERLOADED', {
      inFlightMax: config['admin-in-flight-max'],
    }),
  });
  admin.get('/status', async () => ({
    ...instanceFacts(),
    mode: config.mode,
    region: config.region,
    // Stale or detached tables keep routing (ready stays true): a degraded state, shown here.
    fresh: catalog.fresh,
    catalog: await catalog.stats(),
    locks: { catalog: catalog.lock.snapshot() },
    proxy: {
      connections: plain.guard.stats(),
      http1: relay.stats(),
      upstreams: pools.stats(),
      backhauls: deps.backhauls?.stats(),
    },
    autostart: deps.autostart?.stats(),
    autostop: deps.autostop?.stats(),
    tls: tls && { certificates: tls.store.stats(), connections: tls.listener.guard.stats() },
    tcp: tcp?.listeners.stats(),
  }));

  // Control channel (issue 13): proxyctl and the watchdog read these objects through it.
  const control = await startControl(
    config['state-dir'],
    {
      catalog,
      logger,
      mode: config.mode,
      region: config.region,
      connections: () => ({
        plain: plain.guard.stats(),
        http1: relay.stats(),
        upstreams: pools.stats(),
        tls: tls?.listener.guard.stats(),
      }),
      instance: instanceFacts,
      airtime: () => airtime.snapshot(),
      drain: (reason) => drain.start(reason),
      restart: askWatchdogForRestart,
    },
    controlSocketFor(instance),
  );
  onWatchdog((message) => {
    if (message.type === 'fleet:drain') {
      drain.start(message.reason);
      tellWatchdog({ type: 'fleet:draining', deadlineMs: config['drain-deadline-ms'] });
    } else if (message.type === 'fleet:ticket-keys-rotated' && tls !== undefined) {
      applySharedTicketKeys(tls.listener.server);
    }
  });
  // End of the control channel block.

  onShutdown(logger, async () => {
    drain.close();
    await control.close(); // control channel (issue 13)
    await plain.close();
    relay.close();
    airtime.close();
    await tls?.listener.close();
    tcp?.listeners.close();
    following.abort();
    await followed;
    await tcp?.followed;
    pools.close();
    deps.backhauls?.close();
    deps.autostop?.close();
    await flaps?.close();
    await Promise.all([corrosion.close(), closeAdmin()]);
    await metrics.shutdown();
    instance.lock?.release();
  });

  const bound = await plain.listen(proxyAddress.port, proxyAddress.host);
  const url = `http://${bound.address.includes(':') ? `[${bound.address}]` : bound.address}:${bound.port}`;
  announceListening(logger, 'proxy', url);
  if (tls) announceListening(logger, 'tls', tls.url);
  await listenHttp(admin, config['admin-listen'], 'admin');
  tellWatchdog({ type: 'fleet:ready' });
});
