import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, FlydFixture, hello } from './flyd-fixture.js';

const guest = (memory_mb: number, cpu_kind = 'shared', cpus = 1) => ({
  ...hello,
  guest: { cpu_kind, cpus, memory_mb },
});

// A real flyd offering 12,288 MB and 2 CPUs over a real corrosion: a create that does not fit
// beside the machines it holds is refused with 412 FLYD_ERR_NO_CAPACITY saying what is free, and
// leaves no machine behind; parallel creates never take more room than there is. (Guests are
// Fly's sizes: memory in steps of 256 MB, within its size's range.)
describe('create reserves capacity', () => {
  const fixture = new FlydFixture(['--memory-mb', '12288', '--cpus', '2']);
  let api = '';

  beforeAll(async () => {
    api = await fixture.start();
  });
  afterAll(() => fixture.close());

  const create = (config: unknown, skip_launch = true) =>
    call(api, 'POST', '/v1/machines', { app: 'room', config, skip_launch });

  it('refuses a machine whose memory does not fit, naming what is free, until room is made', async () => {
    const first = await create(guest(8192, 'shared', 4));
    expect(first?.status).toBe(200);
    const refused = await create(guest(8192, 'shared', 4));
    expect(refused?.status).toBe(412);
    expect(refused?.body).toMatchObject({ code: 'FLYD_ERR_NO_CAPACITY' });
    expect(refused?.body.error).toMatch(/needs 8192 MB.*4096 MB and 2 performance CPUs free/);
    const listed = (await call(api, 'GET', '/v1/machines?app=room'))?.body as unknown as unknown[];
    expect(listed).toHaveLength(1);

    // A stopped machine keeps its reservation; a destroyed one gives it back.
    expect((await call(api, 'DELETE', `/v1/machines/${first?.body.id}`))?.status).toBe(200);
    const second = await create(guest(8192, 'shared', 4));
    expect(second?.status).toBe(200);
    expect((await call(api, 'DELETE', `/v1/machines/${second?.body.id}`))?.status).toBe(200);
  }, 30_000);

  it('counts performance CPUs against --cpus, and not shared ones', async () => {
    const shared = await Promise.all([1, 2, 3].map(() => create(guest(512, 'shared', 2))));
    expect(shared.map((answer) => answer?.status)).toEqual([200, 200, 200]);
    const performance = await create(guest(4096, 'performance', 2));
    expect(performance?.status).toBe(200);
    const more = await create(guest(2048, 'performance', 1));
    expect(more).toMatchObject({ status: 412, body: { code: 'FLYD_ERR_NO_CAPACITY' } });
    expect(more?.body.error).toMatch(/needs 2048 MB and 1 performance CPUs.*0 performance CPUs/);
    for (const answer of [...shared, performance])
      expect((await call(api, 'DELETE', `/v1/machines/${answer?.body.id}`))?.status).toBe(200);
  }, 30_000);

  it('lets only as many parallel creates through as there is room for', async () => {
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => create(guest(4096, 'shared', 2))),
    );
    const statuses = answers.map((answer) => answer?.status).sort();
    expect(statuses).toEqual([200, 200, 200, 412, 412, 412]);
    for (const answer of answers)
      if (answer?.status === 200)
        expect((await call(api, 'DELETE', `/v1/machines/${answer.body.id}`))?.status).toBe(200);
  }, 30_000);
});
