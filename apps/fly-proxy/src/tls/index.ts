import type { ServerOptions } from 'node:http2';
import type { Socket } from 'node:net';
import type { CorrosionClient } from '@fleet/corrosion-client';
import { fleetKeyFileSetting, readFleetKeyFile } from '@fleet/fleet-key';
import { type ConfigOf, type Logger, parseListenAddress, UsageError } from '@fleet/service';
import { loadOrCreateFleetCa } from './ca-files.js';
import {
  type AppResolver,
  type CertificateSource,
  corrosionAppResolver,
  corrosionCertificates,
} from './certificate-source.js';
import { createTlsListener, type StreamHandler } from './listeners.js';
import { tlsMetrics } from './metrics.js';
import { CertificateStore } from './store.js';

export { FleetCa, type IssuedCertificate } from './ca.js';
export { loadOrCreateFleetCa } from './ca-files.js';
export {
  type AppResolver,
  type CertificateRow,
  type CertificateSource,
  corrosionAppResolver,
  corrosionCertificates,
} from './certificate-source.js';
export { ConnectionGuard, type GuardLimits } from './guard.js';
export {
  createPlainListener,
  createTlsListener,
  type Listener,
  type StreamHandler,
} from './listeners.js';
export { type TlsMetrics, tlsMetrics } from './metrics.js';
export { CertificateStore, type CertificateStoreOptions } from './store.js';
export { TlsError } from './tls-error.js';

/** fly-proxy's TLS flags; main.ts spreads them into its own spec. */
export const tlsSpec = {
  'tls-listen': {
    type: 'string',
    format: 'address',
    default: '',
    description: 'listener for TLS: h2 and HTTP/1.1 by ALPN, certificates by SNI (empty: none)',
  },
  'fleet-key-file': fleetKeyFileSetting(
    'seals certificate keys in corrosion and signs backhaul streams; needed for TLS and with --host-id',
  ),
  'ca-cert-file': {
    type: 'string',
    default: '',
    description: 'fleet CA certificate (PEM); both CA files are created when both are missing',
  },
  'ca-key-file': { type: 'string', default: '', description: 'fleet CA key (PKCS#8 PEM, 0600)' },
  'tls-handshake-timeout-ms': {
    type: 'number',
    default: 10_000,
    min: 1,
    max: 600_000,
    description: 'bound on a TLS handshake',
  },
  'idle-timeout-ms': {
    type: 'number',
    default: 60_000,
    min: 1,
    max: 86_400_000,
    description: 'connections silent this long with no request in flight are closed',
  },
  'wakeups-without-progress-max': {
    type: 'number',
    default: 30,
    min: 1,
    max: 3_600,
    description:
      'seconds in a row with bytes in but no request progress before a connection is cut',
  },
  'certificates-cached-max': {
    type: 'number',
    default: 10_000,
    min: 1,
    max: 1_000_000,
    description: 'parsed certificates kept in memory',
  },
  'certificate-loads-max': {
    type: 'number',
    default: 256,
    min: 1,
    max: 65_536,
    description:
      'names resolved, and names looked up or issued, at once; past it handshakes fail fast',
  },
  'certificate-issuances-max': {
    type: 'number',
    default: 16,
    min: 1,
    max: 4_096,
    description: 'certificates issued at once; past it handshakes fail fast',
  },
  'certificate-validity-hours': {
    type: 'number',
    default: 168,
    min: 1,
    max: 8_760,
    description: 'lifetime of issued certificates (renewed in their last third)',
  },
} as const;

export interface TlsDeps {
  corrosion: CorrosionClient;
  /** HTTP/2 requests, a stream each. */
  http2: StreamHandler;
  /** The HTTP/2 server's SETTINGS and header bounds (`http2ServerOptions`). */
  http2Options?: ServerOptions;
  /** HTTP/1.1 connections (the raw relay). */
  http1: (socket: Socket) => void;
  logger: Logger;
  /** Default: corrosion queries; the Catalog's resolver replaces it once it holds apps. */
  resolveApp?: AppResolver;
  /** Default: corrosion queries; the Catalog's `certificates` rows replace it later. */
  source?: CertificateSource;
}

/**
 * Starts the TLS listener when `--tls-listen` is set (undefined otherwise): reads the fleet key,
 * loads or creates the fleet CA, builds the certificate store, listens. main.ts announces the
 * returned URL as listener `tls` and closes it on shutdown.
 */
export async function startTls(
  config: ConfigOf<typeof tlsSpec> & { domain: string },
  deps: TlsDeps,
) {
  if (config['tls-listen'] === '') return undefined;
  const address = parseListenAddress(config['tls-listen']);
  const fleetKeyFile = config['fleet-key-file'];
  if (fleetKeyFile === undefined) throw new UsageError('--tls-listen needs --fleet-key-file');
  for (const flag of ['ca-cert-file', 'ca-key-file'] as const) {
    if (config[flag] === '') throw new UsageError(`--tls-listen needs --${flag}`);
  }
  const metrics = tlsMetrics();
  const store = new CertificateStore({
    source: deps.source ?? corrosionCertificates(deps.corrosion),
    resolveApp: deps.resolveApp ?? corrosionAppResolver(deps.corrosion, { domain: config.domain }),
    ca: await loadOrCreateFleetCa({
      certFile: config['ca-cert-file'],
      keyFile: config['ca-key-file'],
    }),
    fleetKey: readFleetKeyFile(fleetKeyFile),
    logger: deps.logger,
    metrics,
    contextsMax: config['certificates-cached-max'],
    loadsMax: config['certificate-loads-max'],
    issuancesMax: config['certificate-issuances-max'],
    leafValidityMs: config['certificate-validity-hours'] * 3_600_000,
  });
  const listener = createTlsListener({
    store,
    http2: deps.http2,
    http2Options: deps.http2Options,
    http1: deps.http1,
    logger: deps.logger,
    metrics,
    handshakeTimeoutMs: config['tls-handshake-timeout-ms'],
    idleTimeoutMs: config['idle-timeout-ms'],
    wakeupsWithoutProgressMax: config['wakeups-without-progress-max'],
  });
  const bound = await listener.listen(address.port, address.host);
  const host = bound.address.includes(':') ? `[${bound.address}]` : bound.address;
  return { store, listener, url: `https://${host}:${bound.port}` };
}
