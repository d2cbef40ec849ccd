import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { unmountUnder } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  call,
  createMachine,
  expectRefusedBeside,
  FlydFixture,
  hello,
  inState,
  passable,
} from './flyd-fixture.js';
import { settledIn } from './machine-wait.js';
import { tempDir } from './temp-dirs.js';

// `--roots-dir` keeps machine roots out of the data directory (a local fleet's data lies in a
// checkout, whose package.json and node_modules a machine's Node code would see). The roots
// there are this flyd's alone: what it finds of machines it does not have it removes, and a
// second flyd on the same folder is refused.
describe('machine roots in a folder of their own (--roots-dir)', () => {
  const rootsDir = passable(tempDir('fleet-roots-'));
  const fixture = new FlydFixture(['--roots-dir', rootsDir]);
  const orphan = randomBytes(7).toString('hex');
  let api = '';

  beforeAll(async () => {
    // What a deleted data directory left: the root of a machine this flyd never had.
    mkdirSync(join(rootsDir, orphan));
    writeFileSync(join(rootsDir, orphan, 'left.txt'), 'left\n');
    writeFileSync(join(rootsDir, 'not-a-root.txt'), 'kept\n');
    api = await fixture.start();
  });
  afterAll(async () => {
    await fixture.close();
    unmountUnder(rootsDir);
  });

  it('runs a machine in its root there, and removed the roots of machines it does not have', async () => {
    expect(existsSync(join(rootsDir, orphan))).toBe(false);
    expect(existsSync(join(rootsDir, 'not-a-root.txt'))).toBe(true);
    const id = await createMachine(api, 'elsewhere', hello);
    await inState(api, id, 'started');
    const ran = await call(api, 'POST', `/v1/machines/${id}/exec`, { cmd: 'pwd' });
    expect(String(present(ran, 'an answer').body.stdout).trim()).toBe(join(rootsDir, id));
    expect(existsSync(join(fixture.dir, 'flyd', 'roots'))).toBe(false);
    // No answer shows the roots folder: a launch that failed there names the root as `/`.
    const failed = await call(api, 'POST', '/v1/machines', {
      app: 'elsewhere',
      config: { image: 'hello', init: { exec: ['./no-such-program'] }, restart: { policy: 'no' } },
    });
    const failedId = String(failed?.body.id);
    await settledIn(api, failedId, 'stopped');
    const shown = present(await call(api, 'GET', `/v1/machines/${failedId}`), 'an answer');
    expect(JSON.stringify(shown.body)).toMatch(/launch failed: .*no-such-program/);
    expect(JSON.stringify(shown.body)).not.toContain(rootsDir);
  });

  it('refuses a second flyd on the same roots folder, whatever its data directory', async () => {
    await expectRefusedBeside(fixture, [
      ...['--data-dir', join(fixture.dir, 'second'), '--roots-dir', rootsDir],
    ]);
  });
});
