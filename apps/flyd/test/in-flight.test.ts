import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectStatus } from './expect-status.js';
import { call, createMachine, FlydFixture, hello, inState } from './flyd-fixture.js';

// flyd answers 503 FLYD_ERR_OVERLOADED past --in-flight-max instead of queueing without bound; a
// long wait counts until it ends, and a caller that goes away frees its place.
describe('requests in flight', () => {
  const fixture = new FlydFixture(['--in-flight-max', '1']);
  let api = '';

  beforeAll(async () => {
    api = await fixture.start();
  });
  afterAll(() => fixture.close());

  it('refuses past the limit with its code, and takes calls again once the wait is gone', async () => {
    const id = await createMachine(api, 'busy', hello);
    await inState(api, id, 'started');
    const waiting = new AbortController();
    // Held: the machine will not be destroyed while this waits.
    const held = fetch(`${api}/v1/machines/${id}/wait?state=destroyed&timeout=60`, {
      headers: { authorization: 'Bearer t' },
      signal: waiting.signal,
    }).catch(() => 'aborted');
    let refused = await call(api, 'GET', `/v1/machines/${id}`);
    for (let tries = 0; refused?.status === 200 && tries < 100; tries++) {
      // The wait may not have reached flyd yet.
      await new Promise((resolve) => setTimeout(resolve, 50));
      refused = await call(api, 'GET', `/v1/machines/${id}`);
    }
    expect(refused).toMatchObject({ status: 503, body: { code: 'FLYD_ERR_OVERLOADED' } });
    waiting.abort();
    expect(await held).toBe('aborted');
    let again = await call(api, 'GET', `/v1/machines/${id}`);
    for (let tries = 0; again?.status === 503 && tries < 100; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      again = await call(api, 'GET', `/v1/machines/${id}`);
    }
    expectStatus(again, 200, 'get after the wait went away');
    expectStatus(await call(api, 'DELETE', `/v1/machines/${id}?kill=true`), 200, 'destroy');
  });
});
