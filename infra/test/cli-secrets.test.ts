import { createHash, randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { filesHolding } from '@fleet/service/vitest-files-holding';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getThroughProxy } from '../src/launcher/demo.js';
import { type CliFleet, helloNodeCopy, startCliFleet } from './cli-fleet.js';

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

// `fleet secrets` as a Fly user runs it against a real local fleet, on infra/examples/hello-node:
// a staged secret reaches the first deploy's machine as env, a secret over an [env] name wins,
// `set` restarts the machine with the new value and `unset` removes it; no value is ever printed,
// and none is found in clear in any file of the fleet (corrosion's database, flyd's, the logs).
describe('fleet secrets', () => {
  const app = 'hello-node';
  const host = `${app}.fleet.test`;
  // Random values: if one is found in a file, only this test can have put it there.
  const first = `first-${randomBytes(12).toString('hex')}`;
  const second = `second-${randomBytes(12).toString('hex')}`;
  const greeting = `Secret hello ${randomBytes(6).toString('hex')}`;
  const third = `third-${randomBytes(12).toString('hex')}`;
  let cli: CliFleet;
  let example: string;
  const run = (args: string[], input?: string) => cli.run(args, { cwd: example, input });
  /** The app's answer to `route` through fly-proxy (its status when not 200). */
  const path = async (route: string) => {
    const answer = await getThroughProxy(`${cli.fleet.urls.proxy}${route}`, host);
    return answer.status === 200 ? answer.body : `status ${answer.status}: ${answer.body}`;
  };

  beforeAll(async () => {
    cli = await startCliFleet('secrets-host');
    example = helloNodeCopy(cli);
    await cli.flaps.createApp(app);
  }, 60_000);
  afterAll(async () => {
    await cli?.stop();
  });

  it('a staged secret reaches the first machine as env, over [env] of the same name', async () => {
    const staged = await run([
      'secrets',
      'set',
      '--stage',
      `API_TOKEN=${first}`,
      `GREETING=${greeting}`,
    ]);
    expect(staged.code, staged.stderr).toBe(0);
    const listed = await run(['secrets', 'list']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/API_TOKEN\s+.*[0-9a-f]{32}/);
    expect(listed.stdout).toMatch(/GREETING\s+.*[0-9a-f]{32}/);
    const deployed = await run(['deploy', '--wait-timeout', '60s', '--no-ha']);
    expect(deployed.code, deployed.stderr).toBe(0);
    await expect
      .poll(() => path('/env/API_TOKEN'), { timeout: 20_000 })
      .toBe(`API_TOKEN sha256 ${sha256(first)}\n`);
    expect(await path('/')).toMatch(new RegExp(`^${greeting} — machine`));
    for (const output of [staged, listed, deployed])
      expect(`${output.stdout}${output.stderr}`).not.toMatch(new RegExp(`${first}|${greeting}`));
  }, 120_000);

  it('set restarts the machine with the new value; unset removes it; neither prints a value', async () => {
    const [before] = await cli.flaps.listMachines(app);
    const set = await run(['secrets', 'set', `API_TOKEN=${second}`]);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stderr).toContain(`${before!.id} (local) started with the new secrets [1/1]`);
    await expect
      .poll(() => path('/env/API_TOKEN'), { timeout: 20_000 })
      .toBe(`API_TOKEN sha256 ${sha256(second)}\n`);
    const json = await run(['secrets', 'list', '--json']);
    const secrets = JSON.parse(json.stdout) as { name: string; digest: string }[];
    expect(secrets.map((secret) => secret.name)).toEqual(['API_TOKEN', 'GREETING']);
    const unset = await run(['secrets', 'unset', 'API_TOKEN']);
    expect(unset.code, unset.stderr).toBe(0);
    await expect
      .poll(() => path('/env/API_TOKEN'), { timeout: 20_000 })
      .toBe('API_TOKEN is not set\n');
    for (const output of [set, json, unset])
      expect(`${output.stdout}${output.stderr}`).not.toMatch(new RegExp(`${first}|${second}`));
  }, 120_000);

  it('imports NAME=VALUE lines from stdin, as `fly secrets import < .env`', async () => {
    const imported = await run(['secrets', 'import'], `# from .env\nAPI_TOKEN=${third}\n`);
    expect(imported.code, imported.stderr).toBe(0);
    await expect
      .poll(() => path('/env/API_TOKEN'), { timeout: 20_000 })
      .toBe(`API_TOKEN sha256 ${sha256(third)}\n`);
    expect(`${imported.stdout}${imported.stderr}`).not.toContain(third);
    const nothing = await run(['secrets', 'import'], '\n# nothing here\n');
    expect(nothing).toMatchObject({ code: 2, stderr: 'Error: no NAME=VALUE line on stdin\n' });
  }, 120_000);

  it('keeps no value in clear in any file of the fleet: corrosion, flyd, flaps, logs', () => {
    const stateDir = dirname(cli.fleet.hostDir);
    for (const value of [first, second, third, greeting])
      expect(filesHolding(stateDir, value), value).toEqual([]);
    // The sealed rows are there: corrosion's database does hold the secrets, sealed.
    expect(filesHolding(stateDir, 'fk1.').some((path) => path.includes('corrosion.db'))).toBe(true);
  });

  it('refuses a malformed pair (exit 2) and an unknown name (exit 1), echoing no value', async () => {
    const bad = await run(['secrets', 'set', 'just-a-value-typed-alone']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('argument 1 is not NAME=VALUE');
    expect(bad.stderr).not.toContain('just-a-value-typed-alone');
    const badName = await run(['secrets', 'set', '1BAD=x']);
    expect(badName.code).toBe(2);
    const unknown = await run(['secrets', 'unset', 'NOT_THERE']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('has no secret NOT_THERE');
  });
});
