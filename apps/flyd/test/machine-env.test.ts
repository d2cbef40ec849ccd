import { readFileSync } from 'node:fs';
import { present } from '@fleet/service/invariant';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, FlydFixture, hello } from './flyd-fixture.js';
import { machinePids } from './machine-processes.js';
import { settledIn } from './machine-wait.js';

/** `NAME=value` lines as a map. */
function parseEnv(text: string, separator: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split(separator)
      .filter((pair) => pair.includes('='))
      .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
  );
}

// A machine's environment is Fly's variables, its config's env and a few basics — read from its
// real process in /proc and through exec — and nothing of flyd's own environment leaks in.
describe("a machine's environment", () => {
  const fixture = new FlydFixture(['--region', 'ams', '--host-id', 'env-host']);
  let base: string;

  beforeAll(async () => {
    await fixture.startCorrosion();
    base = await fixture.startFlyd({ FLYD_TEST_SECRET: 'must-not-leak' });
  });
  afterAll(() => fixture.close());

  it("has PORT, Fly's variables and its config's env, and none of flyd's", async () => {
    const config = { ...hello, env: { GREETING: 'hi', FLY_REGION_HINT: 'x' } };
    const created = await call(base, 'POST', '/v1/machines', { app: 'envapp', config });
    const id = present(created, 'created').body.id as string;
    await settledIn(base, id, 'started');
    const machine = present(await call(base, 'GET', `/v1/machines/${id}`), 'an answer').body;
    const port = String(machine.private_addr).split(':')[1];

    const exec = await call(base, 'POST', `/v1/machines/${id}/exec`, { command: ['printenv'] });
    expect(exec?.body).toMatchObject({ exit_code: 0 });
    const [pid] = machinePids(id);
    const environments = {
      exec: parseEnv(String(present(exec, 'exec').body.stdout), '\n'),
      process: parseEnv(readFileSync(`/proc/${pid}/environ`, 'latin1'), '\0'),
    };
    for (const [where, env] of Object.entries(environments)) {
      expect(env, where).toMatchObject({
        PORT: port,
        FLY_APP_NAME: 'envapp',
        FLY_MACHINE_ID: id,
        FLY_REGION: 'ams',
        FLY_IMAGE_REF: 'hello:latest',
        FLY_PRIVATE_IP: machine.private_ip, // its own address, or loopback's without a network
        FLEET_HOST_ID: 'env-host',
        GREETING: 'hi',
        FLY_REGION_HINT: 'x',
        PATH: expect.any(String),
        HOME: expect.stringMatching(new RegExp(`/roots/${id}$`)),
      });
      expect(env.FLYD_TEST_SECRET, where).toBeUndefined();
      expect(env.LOG_LEVEL, where).toBeUndefined(); // the fixture sets it for flyd
    }
    expect((await call(base, 'DELETE', `/v1/machines/${id}?kill=true`))?.status).toBe(200);
  });

  it("lets Fly's variables win over a config env that names them", async () => {
    const config = { ...hello, env: { FLY_MACHINE_ID: 'spoofed', PORT: '1' } };
    const id = present(
      await call(base, 'POST', '/v1/machines', { app: 'envapp', config }),
      'an answer',
    ).body.id as string;
    await settledIn(base, id, 'started');
    const machine = present(await call(base, 'GET', `/v1/machines/${id}`), 'an answer').body;
    const exec = await call(base, 'POST', `/v1/machines/${id}/exec`, { command: ['printenv'] });
    const env = parseEnv(String(present(exec, 'exec').body.stdout), '\n');
    expect(env.FLY_MACHINE_ID).toBe(id);
    expect(env.PORT).toBe(String(machine.private_addr).split(':')[1]);
    expect((await call(base, 'DELETE', `/v1/machines/${id}?kill=true`))?.status).toBe(200);
  });
});
