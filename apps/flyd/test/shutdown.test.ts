import { afterEach, describe, expect, it } from 'vitest';
import { createMachine, FlydFixture, flydToken, hello, inState } from './flyd-fixture.js';
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
      const flyd = fixture.flyd!;
      await flyd.stop(8_000); // SIGTERM, then SIGKILL past 8 s
      expect(await flyd.exited).toBe(0); // it finished its shutdown: not killed
      fixture.flyd = undefined;
      expect(machinePids(id)).toEqual([]);
    } finally {
      waiting.abort();
      await held;
    }
  });
});
