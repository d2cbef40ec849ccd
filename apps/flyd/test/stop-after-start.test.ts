import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectStatus } from './expect-status.js';
import { call, FlydFixture, hello } from './flyd-fixture.js';

// A user's script creates a machine, waits for `started` and stops it at once; or does not even
// wait. Over a real corrosion and flyd, many times over, every call answers 200: `wait` answers
// once the operation that reached the state is over, and an operation that arrives while another
// finishes waits for it (bounded by --busy-wait-ms) instead of failing with 409.
describe('a stop right after a start', () => {
  const fixture = new FlydFixture();
  let api = '';

  beforeAll(async () => {
    api = await fixture.start();
  });
  afterAll(() => fixture.close());

  const create = async () =>
    expectStatus(
      await call(api, 'POST', '/v1/machines', { app: 'quick', config: hello }),
      200,
      'create',
    ).body.id as string;
  const state = async (id: string) =>
    expectStatus(await call(api, 'GET', `/v1/machines/${id}`), 200, 'get').body.state;

  it('create, wait started, stop: every call succeeds, twenty times', async () => {
    for (let round = 0; round < 20; round++) {
      const id = await create();
      const waited = await call(api, 'GET', `/v1/machines/${id}/wait?state=started&timeout=30`);
      expect(expectStatus(waited, 200, `wait ${round}`).body.state).toBe('started');
      expectStatus(await call(api, 'POST', `/v1/machines/${id}/stop`), 200, `stop ${round}`);
      expect(await state(id)).toBe('stopped');
      expectStatus(await call(api, 'DELETE', `/v1/machines/${id}`), 200, `destroy ${round}`);
    }
  }, 120_000);

  it('create, wait started, update, wait, start and stop: every call succeeds, ten times', async () => {
    for (let round = 0; round < 10; round++) {
      const id = await create();
      const waited = await call(api, 'GET', `/v1/machines/${id}/wait?state=started&timeout=30`);
      expectStatus(waited, 200, `wait ${round}`);
      const config = { ...hello, env: { ROUND: String(round) } };
      const updated = await call(api, 'POST', `/v1/machines/${id}`, { config });
      expect(expectStatus(updated, 200, `update ${round}`).body.config).toEqual(config);
      const again = await call(api, 'GET', `/v1/machines/${id}/wait?state=started&timeout=30`);
      expectStatus(again, 200, `wait after update ${round}`);
      // Already started: a start right after the update's run answers, and changes nothing.
      expectStatus(await call(api, 'POST', `/v1/machines/${id}/start`), 200, `start ${round}`);
      expectStatus(await call(api, 'POST', `/v1/machines/${id}/stop`), 200, `stop ${round}`);
      expectStatus(await call(api, 'DELETE', `/v1/machines/${id}`), 200, `destroy ${round}`);
    }
  }, 120_000);

  it('create then stop without waiting: the stop waits for the create to finish', async () => {
    for (let round = 0; round < 5; round++) {
      const id = await create();
      expectStatus(await call(api, 'POST', `/v1/machines/${id}/stop`), 200, `stop ${round}`);
      expect(await state(id)).toBe('stopped');
      expectStatus(await call(api, 'POST', `/v1/machines/${id}/start`), 200, `start ${round}`);
      expectStatus(await call(api, 'POST', `/v1/machines/${id}/stop`), 200, `stop ${round}`);
      expectStatus(await call(api, 'DELETE', `/v1/machines/${id}`), 200, `destroy ${round}`);
    }
  }, 60_000);

  it('operations sent together on one machine run one after the other, each answered', async () => {
    const id = await create();
    const waited = await call(api, 'GET', `/v1/machines/${id}/wait?state=started&timeout=30`);
    expectStatus(waited, 200, 'wait');
    const answers = await Promise.all([
      call(api, 'POST', `/v1/machines/${id}/stop`),
      call(api, 'POST', `/v1/machines/${id}/start`),
      call(api, 'POST', `/v1/machines/${id}/restart`),
    ]);
    // Each ran after the one before it finished; which order they ran in is the scheduler's, so
    // a restart that found the machine stopped may rightly be refused as not started (412).
    for (const [at, answer] of answers.entries())
      expect([200, 412], `call ${at}: ${JSON.stringify(answer?.body)}`).toContain(answer?.status);
    expect(answers.map((answer) => answer?.status)).not.toContain(409);
    expectStatus(await call(api, 'DELETE', `/v1/machines/${id}?kill=true`), 200, 'destroy');
  }, 60_000);
});
