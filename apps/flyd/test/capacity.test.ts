import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, FlydFixture, hello } from './flyd-fixture.js';

const guest = (memory_mb: number, cpu_kind = 'shared', cpus = 1) => ({
  ...hello,
  guest: { cpu_kind, cpus, memory_mb },
});

// A real flyd offering 1,000 MB and 2 CPUs over a real corrosion: a create that does not fit
// beside the machines it holds is refused with 412 FLYD_ERR_NO_CAPACITY saying what is free, and
// leaves no machine behind; parallel creates never take more room than there is.
describe('create reserves capacity', () => {
  const fixture = new FlydFixture(['--memory-mb', '1000', '--cpus', '2']);
  let api = '';

  beforeAll(async () => {
    api = await fixture.start();
  });
  afterAll(() => fixture.close());

  const create = (config: unknown, skip_launch = true) =>
    call(api, 'POST', '/v1/machines', { app: 'room', config, skip_launch });

  it('refuses a machine whose memory does not fit, naming what is free, until room is made', async () => {
    const first = await create(guest(600));
    expect(first?.status).toBe(200);
    const refused = await create(guest(600));
    expect(refused?.status).toBe(412);
    expect(refused?.body).toMatchObject({ code: 'FLYD_ERR_NO_CAPACITY' });
    expect(refused?.body.error).toMatch(/needs 600 MB.*400 MB and 2 performance CPUs free/);
    const listed = (await call(api, 'GET', '/v1/machines?app=room'))?.body as unknown as unknown[];
    expect(listed).toHaveLength(1);

    // A stopped machine keeps its reservation; a destroyed one gives it back.
    await call(api, 'DELETE', `/v1/machines/${first?.body.id}`);
    const second = await create(guest(600));
    expect(second?.status).toBe(200);
    await call(api, 'DELETE', `/v1/machines/${second?.body.id}`);
  }, 30_000);

  it('counts performance CPUs against --cpus, and not shared ones', async () => {
    const shared = await Promise.all([1, 2, 3].map(() => create(guest(100, 'shared', 2))));
    expect(shared.map((answer) => answer?.status)).toEqual([200, 200, 200]);
    const performance = await create(guest(100, 'performance', 2));
    expect(performance?.status).toBe(200);
    const more = await create(guest(100, 'performance', 1));
    expect(more).toMatchObject({ status: 412, body: { code: 'FLYD_ERR_NO_CAPACITY' } });
    expect(more?.body.error).toMatch(/needs 100 MB and 1 performance CPUs.*0 performance CPUs/);
    for (const answer of [...shared, performance])
      await call(api, 'DELETE', `/v1/machines/${answer?.body.id}`);
  }, 30_000);

  it('lets only as many parallel creates through as there is room for', async () => {
    const answers = await Promise.all(Array.from({ length: 6 }, () => create(guest(300))));
    const statuses = answers.map((answer) => answer?.status).sort();
    expect(statuses).toEqual([200, 200, 200, 412, 412, 412]);
    for (const answer of answers)
      if (answer?.status === 200) await call(api, 'DELETE', `/v1/machines/${answer.body.id}`);
  }, 30_000);
});
