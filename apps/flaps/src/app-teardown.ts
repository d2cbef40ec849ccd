import type { FlydClient } from '@fleet/flyd-client';
import { HttpError } from '@fleet/service';
import { flapsError } from './errors.js';
import type { FleetState } from './state.js';

/** Bound on the destroy calls in flight at once while an app is deleted. */
const teardownConcurrencyMax = 8;

/**
 * Destroys everything an app holds on the workers, as Fly's `DELETE /v1/apps/{app}` does before
 * the app goes: every machine (killed if it runs: fly-go's `DeleteApp` sends no `force` and
 * expects the app gone), then every volume (a destroyed machine has released its volume). Each
 * call goes to the flyd of the worker corrosion names; a worker's 404 counts as already gone. A
 * failure stops the teardown with that error before the app row is touched, so the call can be
 * repeated: what was destroyed stays destroyed, and the rest is tried again.
 */
export async function destroyAppResources(
  state: FleetState,
  flyd: FlydClient,
  appName: string,
): Promise<void> {
  const machines = await state.machines(appName);
  await eachBounded(machines, async (machine) => {
    const flydAddr = await workerAddr(state, machine.host_id, `machine ${machine.id}`);
    await goneOk(flyd.call(flydAddr, 'DELETE', `/v1/machines/${machine.id}?kill=true`));
  });
  const volumes = await state.volumes(appName);
  await eachBounded(volumes, async (volume) => {
    const flydAddr = await workerAddr(state, volume.host_id, `volume ${volume.id}`);
    await goneOk(flyd.call(flydAddr, 'DELETE', `/v1/volumes/${volume.id}`));
  });
}

async function workerAddr(state: FleetState, hostId: string, what: string): Promise<string> {
  const host = await state.worker(hostId);
  if (!host?.flyd_addr)
    throw flapsError('FLAPS_ERR_WORKER_UNREACHABLE', `${what}: its worker ${hostId} is unknown`);
  return host.flyd_addr;
}

/** A destroy the worker answers 404 to has nothing left to destroy. */
async function goneOk(call: Promise<unknown>): Promise<void> {
  try {
    await call;
  } catch (error) {
    if (error instanceof HttpError && error.statusCode === 404) return;
    throw error;
  }
}

/** Runs `work` on every item, at most `teardownConcurrencyMax` at once; rejects with the first failure. */
async function eachBounded<T>(items: T[], work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const lane = async () => {
    while (failure === undefined && next < items.length) {
      const item = items[next++] as T;
      try {
        await work(item);
      } catch (error) {
        failure ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(teardownConcurrencyMax, items.length) }, lane));
  if (failure !== undefined) throw failure;
}
