import type { FlydClient } from '@fleet/flyd-client';
import { longPolls } from '@fleet/service';
import type { FastifyInstance } from 'fastify';
import { flapsError } from '../errors.js';
import { listParam, seconds } from './fly-params.js';
import type { Owner } from './machine-lookup.js';

const waitStates = ['created', 'started', 'stopped', 'suspended', 'destroyed', 'settled'];
/** Fly's `settled`: any state a machine rests in. */
const settledStates = ['started', 'stopped', 'suspended', 'destroyed'];

/**
 * `GET .../wait`: a long poll on the owning worker, at most 60 s, for any of the states asked;
 * ended by flaps' shutdown (longPolls of @fleet/service).
 */
export function machineWaitRoute(app: FastifyInstance, flyd: FlydClient, owner: Owner): void {
  const during = longPolls(app, () =>
    flapsError('FLAPS_ERR_SHUTTING_DOWN', 'flaps is shutting down: call again'),
  );
  app.get<{
    Params: { app: string; id: string };
    Querystring: {
      state?: string | string[];
      timeout?: string;
      instance_id?: string;
      version?: string;
    };
  }>('/v1/apps/:app/machines/:id/wait', async (request) => {
    const { app: appName, id } = request.params;
    // fly-go repeats `state` (`state=started&state=stopped`): any of them ends the wait.
    const wanted = listParam(request.query.state ?? 'started');
    if (!wanted.every((one) => waitStates.includes(one)))
      throw flapsError('FLAPS_ERR_BAD_REQUEST', `state must be one of ${waitStates.join(', ')}`);
    const timeout = Math.min(
      request.query.timeout === undefined ? 60 : seconds(request.query.timeout, 'timeout'),
      60,
    );
    const flydAddr = await owner(appName, id);
    const version = request.query.instance_id ?? request.query.version;
    if (version !== undefined) {
      const machine = await flyd.call<{ instance_id: string }>(
        flydAddr,
        'GET',
        `/v1/machines/${id}`,
      );
      if (machine.instance_id !== version)
        throw flapsError(
          'FLAPS_ERR_WRONG_VERSION',
          `machine ${id} is at version ${machine.instance_id}, not ${version}`,
        );
    }
    const states = new Set(wanted.flatMap((one) => (one === 'settled' ? settledStates : [one])));
    const reached = await during((signal) =>
      flyd.call<{ state: string; version: string }>(
        flydAddr,
        'GET',
        `/v1/machines/${id}/wait?state=${[...states].join(',')}&timeout=${timeout}`,
        undefined,
        { timeoutMs: (timeout + 5) * 1000, signal },
      ),
    );
    return { ok: true, state: reached.state, version: reached.version };
  });
}
