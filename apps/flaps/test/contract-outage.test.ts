import { present } from '@fleet/service/invariant';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Answer, type Fleet, hello, startFleet } from './fleet.js';
import { shapeProblems } from './fly-shapes.js';

// The 503s of the contract: a worker (flyd) or the state store (corrosion) that cannot be
// reached answers Fly's `unavailable` error body, not a hang or a 500. The fleet's processes are
// stopped one by one, so this file has a fleet of its own.
describe('the Machines API contract when a part of the fleet is down', () => {
  let fleet: Fleet;
  let machinePath: string;
  const unavailable = (answer: Answer, code: string) => {
    expect(answer.status, JSON.stringify(answer.body)).toBe(503);
    expect(shapeProblems('error', answer.body)).toEqual([]);
    expect(answer.body).toMatchObject({ code, error: expect.stringMatching(/^unavailable: /) });
  };

  beforeAll(async () => {
    fleet = await startFleet();
    expect((await fleet.call('POST', '/v1/apps', { app_name: 'outage' })).status).toBe(201);
    const created = await fleet.call('POST', '/v1/apps/outage/machines', { config: hello });
    expect(created.status).toBe(200);
    machinePath = `/v1/apps/outage/machines/${created.body.id}`;
    const waited = await fleet.call('GET', `${machinePath}/wait?state=started&timeout=30`);
    expect(waited.status).toBe(200);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('answers 503 unavailable for a machine whose worker cannot be reached', async () => {
    await present(fleet.processes['flyd-w1'], 'fleet.processes[flyd-w1]').stop();
    unavailable(await fleet.call('GET', machinePath), 'FLAPS_ERR_WORKER_UNREACHABLE');
    unavailable(await fleet.call('POST', `${machinePath}/stop`), 'FLAPS_ERR_WORKER_UNREACHABLE');
    unavailable(await fleet.call('GET', `${machinePath}/lease`), 'FLAPS_ERR_WORKER_UNREACHABLE');
    // The list is corrosion's, so it still answers, in the Machine shape.
    const listed = await fleet.call('GET', '/v1/apps/outage/machines');
    expect(listed.status).toBe(200);
    expect(shapeProblems('machines', listed.body)).toEqual([]);
  });

  it('answers 503 unavailable when the state store cannot be reached', async () => {
    await present(fleet.processes.corrosion, 'fleet.processes.corrosion').stop();
    unavailable(await fleet.call('GET', '/v1/apps'), 'FLAPS_ERR_STATE_STORE');
    unavailable(await fleet.call('GET', '/v1/apps/outage'), 'FLAPS_ERR_STATE_STORE');
    unavailable(
      await fleet.call('POST', '/v1/apps', { app_name: 'later' }),
      'FLAPS_ERR_STATE_STORE',
    );
    unavailable(await fleet.call('GET', machinePath), 'FLAPS_ERR_STATE_STORE');
  });
});
