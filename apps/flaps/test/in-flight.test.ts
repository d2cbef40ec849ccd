import { present } from '@fleet/service/invariant';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Answer, type Fleet, hello, operatorToken, startFleet } from './fleet.js';

// flaps answers 503 FLAPS_ERR_OVERLOADED past --in-flight-max instead of queueing without
// bound; a long wait counts until it ends, and a caller that goes away frees its place.
describe('flaps requests in flight', () => {
  let fleet: Fleet;
  let machinePath: string;

  beforeAll(async () => {
    fleet = await startFleet({ flapsArgs: ['--in-flight-max', '1'] });
    expect((await fleet.call('POST', '/v1/apps', { app_name: 'busy' })).status).toBe(201);
    const created = await fleet.call('POST', '/v1/apps/busy/machines', { config: hello });
    expect(created.status).toBe(200);
    machinePath = `/v1/apps/busy/machines/${created.body.id}`;
    expect((await fleet.call('GET', `${machinePath}/wait?state=started&timeout=30`)).status).toBe(
      200,
    );
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  /** Calls until `done` holds for the answer (at most 100 times, 50 ms apart). */
  const callUntil = async (done: (answer: Answer) => boolean) => {
    let answer = await fleet.call('GET', machinePath);
    for (let tries = 0; !done(answer) && tries < 100; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      answer = await fleet.call('GET', machinePath);
    }
    return answer;
  };

  it('refuses past the limit with its code, and takes calls again once the wait is gone', async () => {
    const waiting = new AbortController();
    // Held: the machine is not destroyed while this waits.
    const held = fetch(`${fleet.api}${machinePath}/wait?state=destroyed&timeout=60`, {
      headers: { authorization: `Bearer ${operatorToken}` },
      signal: waiting.signal,
    }).catch(() => 'aborted');
    const refused = await callUntil((answer) => answer.status !== 200);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.body).toMatchObject({ code: 'FLAPS_ERR_OVERLOADED' });
    waiting.abort();
    expect(await held).toBe('aborted');
    expect((await callUntil((answer) => answer.status !== 503)).status).toBe(200);
  });

  // Last in this file: it shuts flaps down. Prompt, seen by its answer rather than a clock: the
  // wait is ended by flaps' preClose with a 503 flaps wrote, where a shutdown that waited it out
  // would answer the wait only at its 60 s (the machine stays started). --in-flight-max 1 shows
  // when the wait is being served: any other call is then refused as overloaded.
  it('answers a wait open at shutdown with 503 FLAPS_ERR_SHUTTING_DOWN and exits', async () => {
    const held = fetch(`${fleet.api}${machinePath}/wait?state=destroyed&timeout=60`, {
      headers: { authorization: `Bearer ${operatorToken}` },
    }).then(async (answer) => ({ status: answer.status, body: await answer.json() }));
    held.catch(() => undefined); // read below; a failure there is the test's failure
    const refused = await callUntil((answer) => answer.status !== 200);
    expect(refused.body).toMatchObject({ code: 'FLAPS_ERR_OVERLOADED' });
    const flaps = present(fleet.processes.flaps, 'the fleet flaps');
    flaps.child.kill('SIGTERM');
    expect(await held).toMatchObject({ status: 503, body: { code: 'FLAPS_ERR_SHUTTING_DOWN' } });
    expect(await flaps.exited).toBe(0);
  });
});
