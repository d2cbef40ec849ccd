import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getThroughProxy } from '../src/launcher/demo.js';
import { repoRoot } from '../src/launcher/paths.js';
import { type CliFleet, helloNodeCopy, startCliFleet } from './cli-fleet.js';

/** A migration of the test's: says what it sees (never the secret itself), exits as told. */
const migration = `const token = process.env.DB_TOKEN;
console.log(\`migrating with GREETING=\${process.env.GREETING} and DB_TOKEN \${token ? 'set' : 'missing'}\`);
if (process.env.MIGRATE_FAIL) { console.error('migration failed: boom'); process.exit(3); }
`;

// `[deploy] release_command` against a real local fleet, on a copy of infra/examples/hello-node:
// it runs once per deploy in a temporary machine with the new release's image, env and the
// app's secrets, before any machine is updated; a command that fails stops the deploy, prints
// its output, and the previous release keeps serving; the temporary machine is always gone.
describe('fleet deploy with a release_command', () => {
  const app = 'hello-node';
  const host = `${app}.fleet.test`;
  let cli: CliFleet;
  let example: string;
  const run = (args: string[]) => cli.run(args, { cwd: example });
  const flyToml = (greeting: string, fail: boolean) => {
    const base = readFileSync(
      join(repoRoot, 'infra', 'examples', 'hello-node', 'fly.toml'),
      'utf8',
    );
    const env = `[env]\n  GREETING = '${greeting}'\n${fail ? "  MIGRATE_FAIL = '1'\n" : ''}`;
    writeFileSync(
      join(example, 'fly.toml'),
      `${base.replace(/\[env\]\n {2}GREETING = .*\n/, env)}\n[deploy]\n  release_command = 'node migrate.mjs'\n`,
    );
  };
  const machines = async () =>
    (await cli.flaps.listMachines(app)).filter((machine) => machine.state !== 'destroyed');

  beforeAll(async () => {
    cli = await startCliFleet('release-host');
    example = helloNodeCopy(cli);
    writeFileSync(join(example, 'migrate.mjs'), migration);
    await cli.flaps.createApp(app);
    const secret = await run(['secrets', 'set', '--stage', 'DB_TOKEN=s3cr3t-db-token']);
    expect(secret.code, secret.stderr).toBe(0);
  }, 60_000);
  afterAll(async () => {
    await cli?.stop();
  });

  it('runs before the first machine, with the release env and the secrets, then is gone', async () => {
    flyToml('Hello v1', false);
    const deployed = await run(['deploy', '--wait-timeout', '60s', '--no-ha']);
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(deployed.stderr).toMatch(/running release_command in [0-9a-f]{14}: node migrate.mjs/);
    expect(deployed.stderr).toContain('release_command succeeded');
    const [machine, ...others] = await machines();
    expect(others).toEqual([]);
    expect((machine!.config.metadata as Record<string, string>).fly_process_group).toBe('app');
    await expect
      .poll(async () => (await getThroughProxy(cli.fleet.urls.proxy, host)).body, {
        timeout: 20_000,
      })
      .toMatch(/^Hello v1 — machine/);
  }, 120_000);

  it('that fails stops the deploy, prints its output, and the old release keeps serving', async () => {
    const [before] = await machines();
    flyToml('Hello v2', true);
    const failed = await run(['deploy', '--wait-timeout', '60s']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('release_command exited with code 3');
    expect(failed.stderr).toContain('migrating with GREETING=Hello v2 and DB_TOKEN set');
    expect(failed.stderr).toContain('migration failed: boom');
    expect(failed.stderr).not.toContain('s3cr3t-db-token');
    const after = await machines();
    expect(after.map((machine) => machine.id)).toEqual([before!.id]);
    expect(after[0]!.config.metadata).toEqual(before!.config.metadata); // same release
    expect((await getThroughProxy(cli.fleet.urls.proxy, host)).body).toMatch(/^Hello v1 — machine/);
  }, 120_000);
});
