import { join } from 'node:path';
import {
  lockState,
  privateDir,
  type ServerProcess,
  type StateLock,
  StateLockedError,
  startServerProcess,
  stateLockHolder,
} from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { localRootsDir } from '../machine-roots.js';
import { localMachineUsers } from '../machine-users.js';
import { imagesDir, type ServerName, serverMain } from './paths.js';
import { type FleetSecrets, fleetKeyFile, loadOrCreateSecrets } from './secrets.js';

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
  /** More fly-proxy flags (say, a shorter `--autostop-interval-ms`). */
  proxyArgs?: string[];
}

/**
 * A server that exits on its own is restarted at once the first time; one that keeps exiting
 * (its exits less than `crashWindowMs` apart) waits twice as long each time, up to
 * `restartDelayMaxMs`, so a crash loop neither spins nor ever gives the fleet up for lost.
 */
const crashWindowMs = 60_000;
const restartDelayMaxMs = 30_000;

/**
 * The flags naming each server's listeners. A restarted server gets the addresses it had (a port
 * 0 pinned to the port it was given), so the URLs every other server and the user hold stay good.
 */
const listenFlags: Record<ServerName, Record<string, string>> = {
  corrosion: { '--api-addr': 'api' },
  flaps: { '--listen': 'api' },
  flyd: { '--listen': 'api' },
  'fly-proxy': { '--listen': 'proxy', '--admin-listen': 'admin' },
};

export interface Fleet {
  urls: { corrosion: string; flyd: string; flaps: string; proxy: string; proxyAdmin: string };
  secrets: FleetSecrets;
  hostDir: string;
  /** Every server process the fleet started, in start order. */
  servers: ServerProcess[];
  /** The state directory's lock, held until `stop()`: its record tells a second launcher where this fleet is. */
  lock: StateLock;
  /** Stops the servers in reverse order (flyd stops its machines first); idempotent. */
  stop(): Promise<void>;
}

/** The launcher's lock on a state directory: `<state-dir>/fleet.lock`. */
export const fleetLockPath = (stateDir: string) => join(stateDir, 'fleet.lock');

/**
 * Takes the state directory for this launcher, before anything in it is touched: throws
 * `StateLockedError` (naming the holder, with the URLs it recorded) when another launcher has it,
 * or when a server of an earlier fleet still holds its own lock on the host's files.
 */
export function claimStateDir(stateDir: string, hostId: string): StateLock {
  const lock = lockState(fleetLockPath(stateDir), 'fleet launcher');
  const hostDir = join(stateDir, hostId);
  for (const path of [join(hostDir, 'corrosion.db.lock'), join(hostDir, 'flyd', 'flyd.lock')]) {
    const holder = stateLockHolder(path);
    if (holder) {
      lock.release();
      throw new StateLockedError(path, holder);
    }
  }
  return lock;
}

/**
 * Boots a one-host fleet as real processes: corrosion, then flaps (keeping uploaded images), flyd
 * (which registers the host in corrosion and pulls images from flaps), and fly-proxy. If any server fails to start, the ones already running
 * are stopped before the error is thrown.
 */
export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const lock = claimStateDir(options.stateDir, options.hostId);
  const hostDir = join(options.stateDir, options.hostId);
  const logsDir = join(hostDir, 'logs');
  // The servers' logs are the operator's: machines run on this host as users of their own.
  privateDir(logsDir);
  const secrets = loadOrCreateSecrets(options.stateDir);
  // Seals app secrets (flaps) and opens them when a machine starts (flyd).
  const fleetKey = ['--fleet-key-file', fleetKeyFile(options.stateDir)];
  // Tokens reach the servers in their environment, which only their user can read: a command
  // line is visible to every local user (`ps`).
  const env = {
    ...process.env,
    FLEET_API_TOKEN: secrets.apiToken,
    FLYD_TOKEN: secrets.flydToken,
    CORROSION_TOKEN: secrets.corrosionToken,
  };
  const servers: ServerProcess[] = [];
  let stopping = false;
  const stop = once(async () => {
    stopping = true;
    try {
      for (const server of [...servers].reverse()) await server.stop(15_000);
    } finally {
      lock.release();
    }
  });
  const spawnServer = (name: ServerName, args: string[], listeners: string[]) =>
    startServerProcess({
      command: process.execPath,
      args: [serverMain(name), ...args],
      env,
      listeners,
      logFile: join(logsDir, `${name}.log`),
      startTimeoutMs: options.startTimeoutMs,
      // Own process groups: a terminal's Ctrl-C or hang-up reaches the launcher alone, which
      // stops the servers in order. Each server also watches a pipe from the launcher
      // (startServerProcess's default) and stops by itself should the launcher die.
      ownProcessGroup: true,
    });
  const restarted = (message: string) => process.stderr.write(`${message}\n`);
  /**
   * Restarts the server at `index` whenever it exits on its own (a crash, an OOM kill, a kill -9
   * by hand), as systemd does on a worker: flyd adopts the machines still running (and stops
   * them when the fleet stops), the others pick up from their files.
   */
  const supervise = (index: number, name: ServerName, args: string[], listeners: string[]) => {
    const log = join(logsDir, `${name}.log`);
    let lastExitMs = 0;
    let delayMs = 0;
    const watch = (server: ServerProcess) => {
      void server.exited.then(async (code) => {
        if (stopping) return;
        const now = Date.now();
        delayMs = now - lastExitMs > crashWindowMs ? 0 : longer(delayMs);
        lastExitMs = now;
        restarted(
          `${name} exited on its own (${code}); restarting it${delayMs > 0 ? ` in ${delayMs / 1000} s` : ''} (its log: ${log})`,
        );
        const pinnedArgs = pinned(args, listenFlags[name], server.urls);
        for (;;) {
          await new Promise((resolve) => setTimeout(resolve, delayMs).unref());
          if (stopping) return;
          try {
            const again = await spawnServer(name, pinnedArgs, listeners);
            if (stopping) {
              await again.stop(15_000);
              return;
            }
            servers[index] = again;
            watch(again);
            return;
          } catch (error) {
            delayMs = longer(delayMs);
            restarted(
              `${name} did not start again (${(error as Error).message}); next try in ${delayMs / 1000} s`,
            );
          }
        }
      });
    };
    watch(present(servers[index], `${name}'s process`));
  };
  const start = async <Listener extends string>(
    name: ServerName,
    args: string[],
    listeners: Listener[],
  ): Promise<Record<Listener, string>> => {
    const server = await spawnServer(name, args, listeners);
    servers.push(server);
    supervise(servers.length - 1, name, args, listeners);
    // It resolved once every listener asked for had announced its URL.
    return Object.fromEntries(
      listeners.map((listener) => [
        listener,
        present(server.urls[listener], `${name} ${listener}`),
      ]),
    ) as Record<Listener, string>;
  };
  try {
    const corrosion = await start(
      'corrosion',
      ['agent', '--db', join(hostDir, 'corrosion.db'), '--api-addr', '127.0.0.1:0'],
      ['api'],
    );
    const corrosionUrl = corrosion.api;
    // flaps before flyd: flyd pulls uploaded images from it (--flaps-url).
    const flaps = await start(
      'flaps',
      [
        ...['--listen', options.apiListen, '--corrosion-url', corrosionUrl],
        ...['--images-dir', join(hostDir, 'flaps-images'), ...fleetKey],
      ],
      ['api'],
    );
    const flyd = await start(
      'flyd',
      [
        ...['--listen', '127.0.0.1:0', '--data-dir', join(hostDir, 'flyd')],
        ...localMachineUsers(join(hostDir, 'flyd')),
        ...localRootsDir(join(hostDir, 'flyd')),
        // The launcher's rule: nothing of the fleet runs on once it exits (flyd's default is to
        // leave its machines running for the next flyd to adopt).
        ...['--corrosion-url', corrosionUrl, '--stop-machines-on-exit'],
        ...['--host-id', options.hostId, '--region', options.region, '--images-dir', imagesDir],
        ...['--flaps-url', flaps.api, ...fleetKey],
      ],
      ['api'],
    );
    const proxy = await start(
      'fly-proxy',
      [
        ...['--mode', 'edge', '--listen', options.proxyListen, '--admin-listen', '127.0.0.1:0'],
        ...['--corrosion-url', corrosionUrl, '--domain', options.domain],
        // Autostart and autostop go through the Machines API (its token is in the environment).
        ...['--region', options.region, '--flaps-url', flaps.api, '--tcp-bind', '127.0.0.1'],
        ...['--state-dir', join(hostDir, 'fly-proxy')], // its control socket (proxyctl)
        ...(options.proxyArgs ?? []),
      ],
      ['proxy', 'admin'],
    );
    const urls = {
      corrosion: corrosionUrl,
      flyd: flyd.api,
      flaps: flaps.api,
      proxy: proxy.proxy,
      proxyAdmin: proxy.admin,
    };
    lock.describe({ urls });
    return { urls, secrets, hostDir, servers, lock, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The next wait before a restart: twice the last, from 1 s, at most `restartDelayMaxMs`. */
function longer(delayMs: number): number {
  return Math.min(restartDelayMaxMs, delayMs * 2 || 1_000);
}

/** `args` with the address after each of `flags` replaced by the one its listener got. */
function pinned(args: string[], flags: Record<string, string>, urls: Record<string, string>) {
  return args.map((arg, index) => {
    const listener = flags[args[index - 1] ?? ''];
    const url = listener === undefined ? undefined : urls[listener];
    return url === undefined ? arg : new URL(url).host;
  });
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => {
    running ??= fn();
    return running;
  };
}
