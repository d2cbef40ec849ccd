import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, FlydFixture, hello, runsIdle } from './flyd-fixture.js';
import { machinePids } from './machine-processes.js';

const newId = () => randomBytes(7).toString('hex');

// kill -9 flyd at different moments of a create and of a stop: after a restart on the same data
// directory every unfinished run resumes and completes, the machine ends in the state the
// operation was heading for, and exactly one process (or none) runs it.
describe('flyd killed mid-operation', () => {
  const fixture = new FlydFixture();
  beforeAll(() => fixture.startCorrosion());
  afterAll(() => fixture.close());

  for (const delayMs of [0, 5, 15, 40]) {
    it(`finishes a create and a stop interrupted after ${delayMs} ms`, async () => {
      // Whatever way the case ends (early, or failing), its flyd is stopped: the next case starts
      // its own on the same data directory, which a live one would hold.
      try {
        await interruptCreateAndStop(delayMs);
      } finally {
        await fixture.stopFlyd();
      }
    }, 60_000);
  }

  async function interruptCreateAndStop(delayMs: number): Promise<void> {
    const id = newId();
    let api = await fixture.startFlyd();
    void call(api, 'POST', '/v1/machines', { id, app: 'crash', config: hello });
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    await fixture.kill();
    api = await fixture.startFlyd();
    const created = await call(api, 'GET', `/v1/machines/${id}/wait?state=started&timeout=15`);
    if (created?.status === 404) return; // killed before the machine was recorded: nothing to finish
    expect(created?.status).toBe(200);
    expect(machinePids(id)).toHaveLength(1);

    void call(api, 'POST', `/v1/machines/${id}/stop`);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    await fixture.kill();
    api = await fixture.startFlyd();
    const runs = (await call(api, 'GET', `/v1/machines/${id}/runs`))?.body as unknown as {
      status: string;
    }[];
    await runsIdle(api);
    expect(runs.every((run) => run.status !== 'failed')).toBe(true);
    const machine = (await call(api, 'GET', `/v1/machines/${id}`))?.body;
    expect(['started', 'stopped']).toContain(machine?.state);
    expect(machinePids(id)).toHaveLength(machine?.state === 'started' ? 1 : 0);
    await call(api, 'DELETE', `/v1/machines/${id}?kill=true`);
  }
});
