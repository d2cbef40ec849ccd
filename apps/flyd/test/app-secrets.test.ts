import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appSecretContext, sealSecret } from '@fleet/fleet-key';
import { present } from '@fleet/service/invariant';
import { filesHolding } from '@fleet/service/vitest-files-holding';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, FlydFixture, hello } from './flyd-fixture.js';
import { machinePids } from './machine-processes.js';
import { settledIn } from './machine-wait.js';

const plaintext = 'pl41n-s3cret-value-never-on-disk';

// App secrets reach a machine's process as environment variables, opened by flyd from the sealed
// rows of a real corrosion at each launch: over the config's env, never on this worker's disk; a
// value sealed with another fleet key fails the launch at once, naming the secret, not its value;
// with corrosion away, a restart gets the rows last read.
describe("an app's secrets", () => {
  const keyDir = mkdtempSync(join(tmpdir(), 'fleet-key-'));
  const fleetKey = Buffer.from(randomBytes(32).toString('hex'));
  writeFileSync(join(keyDir, 'fleet.key'), fleetKey, { mode: 0o600 });
  const fixture = new FlydFixture([
    '--region',
    'ams',
    '--host-id',
    'secrets-host',
    '--fleet-key-file',
    join(keyDir, 'fleet.key'),
  ]);
  let base: string;

  const setSecret = (app: string, name: string, value: string, key = fleetKey) =>
    fixture.corrosionClient.transaction([
      [
        'INSERT INTO app_secrets (app, name, sealed) VALUES (?, ?, ?) ON CONFLICT (app, name) DO UPDATE SET sealed = excluded.sealed',
        [app, name, sealSecret(key, Buffer.from(value), appSecretContext(app, name))],
      ],
    ]);

  beforeAll(async () => {
    await fixture.startCorrosion();
    base = await fixture.startFlyd();
  });
  afterAll(async () => {
    try {
      await fixture.close();
    } finally {
      rmSync(keyDir, { recursive: true, force: true });
    }
  });

  it('are in the process env over the config env, and in no file of the worker', async () => {
    await setSecret('vault', 'TOKEN', plaintext);
    const config = { ...hello, env: { TOKEN: 'from-config', PLAIN: 'kept' } };
    const created = await call(base, 'POST', '/v1/machines', { app: 'vault', config });
    const id = present(created, 'created').body.id as string;
    await settledIn(base, id, 'started');
    const [pid] = machinePids(id);
    const environ = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
    expect(environ).toContain(`TOKEN=${plaintext}`);
    expect(environ).toContain('PLAIN=kept');
    expect(filesHolding(join(fixture.dir, 'flyd'), plaintext)).toEqual([]);
    expect((await call(base, 'DELETE', `/v1/machines/${id}?kill=true`))?.status).toBe(200);
  });

  it('that do not open with this fleet key fail the launch, naming the secret only', async () => {
    await setSecret('foreign', 'API_KEY', plaintext, Buffer.from(randomBytes(32).toString('hex')));
    const config = { ...hello, restart: { policy: 'no' } };
    const created = await call(base, 'POST', '/v1/machines', { app: 'foreign', config });
    const id = present(created, 'created').body.id as string;
    await settledIn(base, id, 'stopped');
    const machine = present(await call(base, 'GET', `/v1/machines/${id}`), 'an answer').body;
    const events = machine.events as { type: string; request?: { error?: string } }[];
    expect(events[0]?.request?.error).toBe(
      'launch failed: secret API_KEY cannot be opened (FLEET_KEY_ERR_UNSEAL)',
    );
    expect(JSON.stringify(machine)).not.toContain(plaintext);
    expect((await call(base, 'DELETE', `/v1/machines/${id}`))?.status).toBe(200);
  });

  // Last: it stops corrosion.
  it('are those last read when corrosion is away at a restart', async () => {
    await setSecret('away', 'TOKEN', plaintext);
    const created = await call(base, 'POST', '/v1/machines', { app: 'away', config: hello });
    const id = present(created, 'created').body.id as string;
    await settledIn(base, id, 'started');
    await fixture.corrosion.stop();
    const restarted = await call(base, 'POST', `/v1/machines/${id}/restart`);
    expect(restarted?.status, JSON.stringify(restarted?.body)).toBe(200);
    await settledIn(base, id, 'started');
    const [pid] = machinePids(id);
    expect(readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0')).toContain(
      `TOKEN=${plaintext}`,
    );
    expect((await call(base, 'DELETE', `/v1/machines/${id}?kill=true`))?.status).toBe(200);
  });
});
