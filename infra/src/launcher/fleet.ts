import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type ServerProcess, startServerProcess } from '@fleet/service';
import { imagesDir, type ServerName, serverMain } from './paths.js';
import { type FleetSecrets, loadOrCreateSecrets } from './secrets.js';

export interface FleetOptions {
  /** Everything the fleet keeps (SQLite files, logs, secrets), one sub-directory per host. */
  stateDir: string;
  /** The one host of a local fleet: a worker that is also an edge. */
  hostId: string;
  region: string;
  /** Where fly-proxy takes user traffic (`host:port`, port 0 for any). */
  proxyListen: string;
  /** Where flaps serves the Machines API. */
  apiListen: string;
  /** Fleet domain: `<app>.<domain>` names an app at the proxy. */
  domain: string;
  /** Per-server start timeout. */
  startTimeoutMs: number;
}

export interface Fleet {
  urls: { corrosion: string; flyd: string; flaps: string; proxy: string; proxyAdmin: string };
  secrets: FleetSecrets;
  hostDir: string;
  /** Every server process the fleet started, in start order. */
  servers: ServerProcess[];
  /** Stops the servers in reverse order (flyd stops its machines first); idempotent. */
  stop(): Promise<void>;
}

/**
 * Boots a one-host fleet as real processes: corrosion, then flyd (which registers the host in
 * corrosion), then flaps and fly-proxy. If any server fails to start, the ones already running
 * are stopped before the error is thrown.
 */
export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const hostDir = join(options.stateDir, options.hostId);
  const logsDir = join(hostDir, 'logs');
  mkdirSync(logsDir, { recursive: true });
  const secrets = loadOrCreateSecrets(options.stateDir);
  const servers: ServerProcess[] = [];
  const stop = once(async () => {
    for (const server of [...servers].reverse()) await server.stop(15_000);
  });
  const start = async (name: ServerName, args: string[], listeners: string[]) => {
    const server = await startServerProcess({
      command: process.execPath,
      args: [serverMain(name), ...args],
      listeners,
      logFile: join(logsDir, `${name}.log`),
      startTimeoutMs: options.startTimeoutMs,
      ownProcessGroup: true,
    });
    servers.push(server);
    return server.urls;
  };
  try {
    const corrosion = await start(
      'corrosion',
      ['agent', '--db', join(hostDir, 'corrosion.db'), '--api-addr', '127.0.0.1:0'],
      ['api'],
    );
    const corrosionUrl = corrosion.api!;
    const flyd = await start(
      'flyd',
      [
        ...['--listen', '127.0.0.1:0', '--data-dir', join(hostDir, 'flyd')],
        ...['--corrosion-url', corrosionUrl, '--token', secrets.flydToken],
        ...['--host-id', options.hostId, '--region', options.region, '--images-dir', imagesDir],
      ],
      ['api'],
    );
    const flaps = await start(
      'flaps',
      [
        ...['--listen', options.apiListen, '--corrosion-url', corrosionUrl],
        ...['--token', secrets.apiToken, '--flyd-token', secrets.flydToken],
      ],
      ['api'],
    );
    const proxy = await start(
      'fly-proxy',
      [
        ...['--mode', 'edge', '--listen', options.proxyListen, '--admin-listen', '127.0.0.1:0'],
        ...['--corrosion-url', corrosionUrl, '--domain', options.domain],
        ...['--region', options.region],
      ],
      ['proxy', 'admin'],
    );
    return {
      urls: {
        corrosion: corrosionUrl,
        flyd: flyd.api!,
        flaps: flaps.api!,
        proxy: proxy.proxy!,
        proxyAdmin: proxy.admin!,
      },
      secrets,
      hostDir,
      servers,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => {
    running ??= fn();
    return running;
  };
}
