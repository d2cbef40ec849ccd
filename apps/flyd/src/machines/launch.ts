import type { Logger } from '@fleet/service';
import { flydError } from '../errors.js';
import { AbortStep } from '../fsm/engine.js';
import { type ImageSources, type ResolvedImage, resolveImage } from '../images/resolve.js';
import { giveTo, type MachineUser } from '../runtime/machine-users.js';
import type { ProcessRuntime } from '../runtime/process-runtime.js';
import type { VolumeService } from '../volumes/service.js';
import type { MachineDirs } from './dirs.js';
import { launchError } from './launch-errors.js';
import { listensOnLoopbackOnly } from './loopback-only.js';
import {
  guestOf,
  type MachineConfig,
  type MachineRecord,
  type MachineStore,
} from './machine-store.js';
import { freePort, waitForListener } from './ports.js';
import { prepareRoot } from './root.js';

/** What a launch needs of the machine service. */
export interface LaunchDeps {
  store: MachineStore;
  runtime: ProcessRuntime;
  volumes: VolumeService;
  dirs: MachineDirs;
  images: ImageSources;
  /** How long a starting machine may take to listen on its service port. */
  listenWaitMs: number;
  /** The processes and threads one machine may have at once (where cgroups bound them). */
  pidsMax: number;
  logger: Logger;
  /** Pulls the config's image if this worker lacks it; the release lets the cache evict it. */
  holdImage(config: MachineConfig): Promise<() => void>;
  env(id: string, port: number | null, secrets: Record<string, string>): Record<string, string>;
  /** Opens the app's secrets (app-secrets.ts); a failure aborts the launch, naming the secret. */
  secrets(app: string): Promise<Record<string, string>>;
  setState(
    id: string,
    state: 'starting',
    event: { type: string; source: string },
    extra: Partial<Pick<MachineRecord, 'port' | 'ip' | 'stop_reason'>>,
  ): void;
  /** Records `started` and answers once the row reached corrosion. */
  recordStarted(id: string): Promise<void>;
}

/** Whether another machine of this worker holds an address (read once: prepare asks per try). */
function addressesHeld(store: MachineStore, id: string): (ip: string) => boolean {
  const held = new Set(
    store
      .list()
      .filter((other) => other.id !== id && other.state !== 'destroyed')
      .map((other) => other.ip),
  );
  return (ip) => held.has(ip);
}

/** The port a machine in a network of its own listens on: its first service's (Fly's 8080 else). */
function internalPort(config: MachineConfig): number {
  return config.services?.[0]?.internal_port ?? 8080;
}

/**
 * Launches a machine's process (idempotent: a running machine is left as it is). A failure is an
 * AbortStep when the config is its cause (not retried) and a retried error otherwise; its cause
 * is the API's answer, 422 FLYD_ERR_LAUNCH_FAILED with the reason and no host path (see
 * launch-errors.ts).
 */
export async function launchMachine(id: string, deps: LaunchDeps): Promise<void> {
  try {
    await launchProcess(id, deps);
  } catch (error) {
    throw launchError(error, deps.dirs.hidden(id));
  }
}

async function launchProcess(id: string, deps: LaunchDeps): Promise<void> {
  const { runtime } = deps;
  if (runtime.isRunning(id)) return;
  const machine = deps.store.get(id);
  if (!machine) throw flydError('FLYD_ERR_NOT_FOUND', `machine ${id} not found`);
  // Pulled again if its folder went (the cache never evicts an image a machine here uses).
  (await deps.holdImage(machine.config))();
  let image: ResolvedImage;
  try {
    image = resolveImage(deps.images, machine.config);
  } catch (error) {
    throw new AbortStep((error as Error).message, { cause: error }); // retrying cannot fix a config
  }
  const user = runtime.userOf(id);
  // Made while the rest of the launch goes on (the root's disk mounted and emptied is the
  // slowest part of a start); the process's command waits for it (runtime.start).
  const rootReady = readyRoot(id, machine.config, image, user, deps);
  rootReady.catch(() => undefined); // its failure is the launch's, through runtime.start
  let spawned: Awaited<ReturnType<typeof spawnMachine>>;
  try {
    spawned = await spawnMachine(id, machine, image, user, rootReady, deps);
  } catch (error) {
    await rootReady.catch(() => undefined); // nothing of a failed launch goes on behind it
    throw error;
  }
  const { pid, ip, port } = spawned;
  deps.store.update(id, { pid });
  // A process machine is `started` once its service port takes connections (bounded), so the
  // proxy does not route to a machine that cannot answer yet.
  if ((machine.config.services ?? []).length > 0) {
    const listening = await waitForListener(ip ?? '127.0.0.1', port, deps.listenWaitMs, () =>
      runtime.isRunning(id),
    );
    if (!runtime.isRunning(id)) return; // it exited while starting: `exited` recorded it
    if (!listening) {
      deps.logger.warn({ machine: id, port }, 'machine does not listen on its service port yet');
      // Said in its own logs (what `fleet logs` shows), as Fly's proxy hints at it.
      if (ip !== null && listensOnLoopbackOnly(pid, port))
        runtime.note(
          id,
          `[flyd] the machine listens on 127.0.0.1:${port} only, which nothing outside it reaches: listen on 0.0.0.0:${port}`,
        );
    }
  }
  await deps.recordStarted(id);
}

/** A fresh root for the machine with its image's files, its volumes linked, handed to its user. */
async function readyRoot(
  id: string,
  config: MachineConfig,
  image: ResolvedImage,
  user: MachineUser | undefined,
  deps: LaunchDeps,
): Promise<void> {
  const root = deps.dirs.root(id);
  await deps.dirs.freshRoot(id, config);
  prepareRoot(root, image, config);
  await deps.volumes.link(root, config, user);
  if (user) giveTo(root, user); // after the mount's link: the folders made for it too
}

/** Claims the machine's address and port, records it `starting` and spawns its process. */
async function spawnMachine(
  id: string,
  machine: MachineRecord,
  image: ResolvedImage,
  user: MachineUser | undefined,
  rootReady: Promise<void>,
  deps: LaunchDeps,
): Promise<{ pid: number; ip: string | null; port: number }> {
  const { runtime } = deps;
  const secrets = await deps.secrets(machine.app);
  const network = runtime.network;
  // In a network of its own a machine listens on its service's port, as on Fly; on the host's,
  // on a free port of the shared loopback, mapped to it.
  const port = network ? internalPort(machine.config) : (machine.port ?? (await freePort()));
  const ip = network ? await network.prepare(id, machine.ip, addressesHeld(deps.store, id)) : null;
  deps.setState(id, 'starting', { type: 'start', source: 'user' }, { port, ip, stop_reason: null });
  try {
    const pid = await runtime.start({
      machineId: id,
      image,
      dir: deps.dirs.root(id),
      rootReady,
      stateDir: deps.dirs.state(id),
      env: deps.env(id, port, secrets),
      limits: { ...guestOf(machine.config), pidsMax: deps.pidsMax },
      user,
      ip,
    });
    return { pid, ip, port };
  } catch (error) {
    if (ip !== null) await network?.discard(id, ip);
    throw error;
  }
}
