#!/usr/bin/env node
import { Catalog } from '@fleet/catalog';
import { CorrosionClient } from '@fleet/corrosion-client';
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
import { startControl } from './control/server.js';
import { Http1Relay } from './http1/relay.js';
import { UpstreamPools } from './http1/upstream-pools.js';
import { ProxyMetrics } from './metrics.js';
import { createProxyHandler } from './proxy.js';
import {
  createPlainListener,
  startTls,
  tlsMetrics,
  tlsSpec,
  withHttp1Headers,
} from './tls/index.js';
import { Upstreams } from './upstreams.js';

const spec = {
  mode: {
    type: 'string',
    default: 'edge',
    choices: ['edge', 'backhaul'],
    description: 'edge (takes user traffic); backhaul comes later',
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
  'header-bytes-max': {
    type: 'number',
    default: 65_536,
    min: 1_024,
    max: 1_048_576,
    description: 'bound on a request or response head; a larger request head is 431',
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
  'state-dir': {
    type: 'string',
    default: '.fleet/fly-proxy',
    description:
      'directory of the control socket (control.sock), relative to the working directory',
  },
} as const;

runMain(async () => {
  const config = parseConfig(
    {
      name: 'fly-proxy',
      summary: 'The Fleet router: sends each request to a started machine of its app.',
    },
    spec,
  );
  if (!config) return;
  if (config.mode !== 'edge') {
    throw new UsageError(`--mode ${config.mode} is not supported yet (only edge)`);
  }
  // fly-proxy keeps no state on disk (its catalog lives in memory, fed by corrosion): nothing of
  // its own to lock; its listeners are exclusive by themselves.
  const corrosionToken = readSecret({
    fileFlag: 'corrosion-token-file',
    file: config['corrosion-token-file'],
    variable: 'CORROSION_TOKEN',
  });
  const proxyAddress = parseListenAddress(config.listen);
  const logger = createLogger('fly-proxy');
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
  const upstreams = new Upstreams({
    connectionsPerUpstream: config['connections-per-upstream'],
    upstreamsMax: config['upstreams-max'],
    connectTimeoutMs: config['connect-timeout-ms'],
    headersTimeoutMs: config['upstream-timeout-ms'],
    bodyTimeoutMs: config['upstream-timeout-ms'],
  });
  const pools = new UpstreamPools({
    connectionsPerUpstream: config['connections-per-upstream'],
    upstreamsMax: config['upstreams-max'],
    connectTimeoutMs: config['connect-timeout-ms'],
    waitTimeoutMs: config['upstream-wait-timeout-ms'],
    waitersMax: config['upstream-waiters-max'],
    idleTimeoutMs: config['upstream-idle-timeout-ms'],
  });
  const deps = {
    catalog,
    upstreams,
    pools,
    region: config.region,
    metrics: new ProxyMetrics(),
    logger,
  };
  const relay = new Http1Relay(deps, {
    headBytesMax: config['header-bytes-max'],
    clientHeadersTimeoutMs: config['client-headers-timeout-ms'],
    clientWriteTimeoutMs: config['client-write-timeout-ms'],
    upstreamTimeoutMs: config['upstream-timeout-ms'],
  });
  const http2Ready = withHttp1Headers(createProxyHandler(deps, relay));
  const plain = createPlainListener({
    handler: http2Ready,
    http1: (socket) => relay.serve(socket),
    logger,
    metrics: tlsMetrics(),
  });
  const tls = await startTls(config, {
    corrosion,
    handler: http2Ready,
    http1: (socket) => relay.serve(socket),
    logger,
  });
  const admin = createHttpServer({
    logger,
    metrics,
    limits: defaultHttpLimits('PROXY_ERR_OVERLOADED', {
      inFlightMax: config['admin-in-flight-max'],
    }),
  });
  admin.get('/status', async () => ({
    mode: config.mode,
    region: config.region,
    catalog: await catalog.stats(),
    locks: { catalog: catalog.lock.snapshot() },
    proxy: { connections: plain.guard.stats(), http1: relay.stats(), upstreams: pools.stats() },
    tls: tls && { certificates: tls.store.stats(), connections: tls.listener.guard.stats() },
  }));

  // Control channel (issue 13): proxyctl and the watchdog read these objects through it.
  const control = await startControl(config['state-dir'], {
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
  });
  // End of the control channel block.

  onShutdown(logger, async () => {
    await control.close(); // control channel (issue 13)
    await plain.close();
    relay.close();
    await tls?.listener.close();
    following.abort();
    await followed;
    pools.close();
    await Promise.all([upstreams.close(), corrosion.close(), admin.close()]);
    await metrics.shutdown();
  });

  const bound = await plain.listen(proxyAddress.port, proxyAddress.host);
  const url = `http://${bound.address.includes(':') ? `[${bound.address}]` : bound.address}:${bound.port}`;
  announceListening(logger, 'proxy', url);
  if (tls) announceListening(logger, 'tls', tls.url);
  await listenHttp(admin, config['admin-listen'], 'admin');
});
