import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callExpecting } from './expect-status.js';
import { FlydFixture, hello, inState } from './flyd-fixture.js';

interface Version {
  version: string;
  state: string;
  user_config: { env?: Record<string, string> };
}
interface Event {
  type: string;
  status: string;
  source: string;
  request?: { instance_id?: string; replaced_by?: string };
}

// A real flyd over a real corrosion: each update makes a new version and the one it supersedes
// `replaced` (Fly's version state), with an `update` event that names the replaced instance; the
// current version carries its machine's state.
describe('machine versions across updates', () => {
  const fixture = new FlydFixture();
  let api = '';

  beforeAll(async () => {
    api = await fixture.start();
  });
  afterAll(() => fixture.close());

  const versionsOf = async (id: string) =>
    (await callExpecting(api, 'GET', `/v1/machines/${id}/versions`)).body as unknown as Version[];

  it('marks every version an update superseded replaced, and records the replaced instance', async () => {
    const created = await callExpecting(api, 'POST', '/v1/machines', {
      app: 'versions',
      config: { ...hello, env: { V: '1' } },
    });
    const id = created.body.id as string;
    const first = created.body.instance_id as string;
    await inState(api, id, 'started');
    expect(await versionsOf(id)).toMatchObject([{ version: first, state: 'started' }]);

    const second = (
      await callExpecting(api, 'POST', `/v1/machines/${id}`, {
        config: { ...hello, env: { V: '2' } },
      })
    ).body.instance_id as string;
    const third = (
      await callExpecting(api, 'POST', `/v1/machines/${id}`, {
        config: { ...hello, env: { V: '3' } },
      })
    ).body.instance_id as string;
    expect(new Set([first, second, third]).size).toBe(3);
    await inState(api, id, 'started');
    expect(await versionsOf(id)).toMatchObject([
      { version: third, state: 'started', user_config: { env: { V: '3' } } },
      { version: second, state: 'replaced', user_config: { env: { V: '2' } } },
      { version: first, state: 'replaced', user_config: { env: { V: '1' } } },
    ]);

    const events = (await callExpecting(api, 'GET', `/v1/machines/${id}`)).body.events as Event[];
    const replaced = events.filter((event) => event.status === 'replaced');
    expect(replaced).toEqual([
      expect.objectContaining({
        type: 'update',
        source: 'flyd',
        request: { instance_id: second, replaced_by: third },
      }),
      expect.objectContaining({
        type: 'update',
        source: 'flyd',
        request: { instance_id: first, replaced_by: second },
      }),
    ]);

    // The current version follows its machine's state; the replaced ones stay replaced.
    await callExpecting(api, 'POST', `/v1/machines/${id}/stop`);
    await until('the current version to show stopped', async () => {
      const [current] = await versionsOf(id);
      return current?.state === 'stopped' ? true : undefined;
    });
    expect((await versionsOf(id)).slice(1).map((version) => version.state)).toEqual([
      'replaced',
      'replaced',
    ]);
    await callExpecting(api, 'DELETE', `/v1/machines/${id}`);
  }, 30_000);
});
