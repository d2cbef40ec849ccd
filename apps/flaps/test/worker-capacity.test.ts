import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Fleet, hello, startFleet } from './fleet.js';

// flaps places by memory; a worker can still refuse a machine it has no room for (here: more
// performance CPUs than its one). Real corrosion, flyd and flaps: the refusal reaches the
// client as Fly's insufficient_capacity, with the worker's message saying what is free.
describe('a worker without room for a machine', () => {
  let fleet: Fleet;

  beforeAll(async () => {
    // Memory enough on any host for a performance-2x guest (4 GB): the CPUs are what is short.
    fleet = await startFleet({ flydArgs: ['--cpus', '1', '--memory-mb', '65536'] });
    const created = await fleet.call('POST', '/v1/apps', { app_name: 'big', org_slug: 'personal' });
    expect(created.status).toBe(201);
  }, 60_000);
  afterAll(async () => {
    await fleet?.stop();
  });

  it('answers insufficient_capacity with what the worker has free', async () => {
    const answer = await fleet.call('POST', '/v1/apps/big/machines', {
      region: 'ams',
      config: { ...hello, guest: { cpu_kind: 'performance', cpus: 2, memory_mb: 4096 } },
    });
    expect(answer.status).toBe(412);
    expect(answer.body).toMatchObject({
      status: 'insufficient_capacity',
      code: 'FLYD_ERR_NO_CAPACITY',
    });
    expect(answer.body.error).toMatch(
      /^insufficient_capacity: no room on this worker: .*1 performance CPUs free/,
    );
  }, 30_000);
});
