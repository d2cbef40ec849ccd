import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { afterEach, describe, expect, it } from 'vitest';
import { call, createMachine, FlydFixture, flydToken, hello, inState } from './flyd-fixture.js';
import { machinePids } from './machine-processes.js';

// With --stop-machines-on-exit, a SIGTERM stops every machine before flyd exits — also while a
// caller holds a long poll open: shutdown must not wait out a `wait` of up to 60 s, or the
// supervisor's SIGKILL would end flyd with its (detached) machines still running.
describe('flyd shutdown', () => {
  let fixture: FlydFixture;
  afterEach(async () => {
    await fixture.close();
  });

  it('stops its machines within the grace even while a wait is open', async () => {
    fixture = new FlydFixture();
    const api = await fixture.start();
    const id = await createMachine(api, 'shutdown', hello);
    await inState(api, id, 'started');
    expect(machinePids(id)).toHaveLength(1);
    const waiting = new AbortController();
    const held = fetch(`${api}/v1/machines/${id}/wait?state=destroyed&timeout=60`, {
      headers: { authorization: `Bearer ${flydToken}` },
      signal: waiting.signal,
    }).catch(() => 'cut');
    try {
      const flyd = present(fixture.flyd, 'the fixture flyd');
      await flyd.stop(8_000); // SIGTERM, then SIGKILL past 8 s
      expect(await flyd.exited).toBe(0); // it finished its shutdown: not killed
      fixture.flyd = undefined;
      expect(machinePids(id)).toEqual([]);
    } finally {
      waiting.abort();
      await held;
    }
  });

  // Prompt, seen by its answer rather than a clock: the wait is ended by the server's preClose
  // with a 503 flyd wrote, where a shutdown that waited it out (or cut it at a bound) would leave
  // the caller a dropped connection. --in-flight-max 1 shows when the wait is being served: any
  // other call is then refused as overloaded.
  it('answers a wait open at shutdown with 503 FLYD_ERR_SHUTTING_DOWN instead of holding it', async () => {
    fixture = new FlydFixture(['--in-flight-max', '1']);
    const api = await fixture.start();
    const id = await createMachine(api, 'shutdown-wait', hello);
    await inState(api, id, 'started');
    const held = fetch(`${api}/v1/machines/${id}/wait?state=destroyed&timeout=60`, {
      headers: { authorization: `Bearer ${flydToken}` },
    }).then(async (answer) => ({ status: answer.status, body: await answer.json() }));
    held.catch(() => undefined); // read below; a failure here is the test's failure
    await until('the wait to be in flight', async () => {
      const answer = await call(api, 'GET', `/v1/machines/${id}`);
      return answer?.body.code === 'FLYD_ERR_OVERLOADED' ? true : undefined;
    });
    const flyd = present(fixture.flyd, 'the fixture flyd');
    const exited = flyd.exited;
    flyd.child.kill('SIGTERM');
    expect(await held).toMatchObject({ status: 503, body: { code: 'FLYD_ERR_SHUTTING_DOWN' } });
    expect(await exited).toBe(0);
    fixture.flyd = undefined;
  });
});
