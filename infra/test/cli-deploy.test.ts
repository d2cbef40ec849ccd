import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Machine } from '@fleet/flaps-client';
import { until } from '@fleet/service/vitest-until';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getThroughProxy } from '../src/launcher/demo.js';
import { type CliFleet, helloNodeCopy, startCliFleet } from './cli-fleet.js';

// `fleet launch` and `fleet deploy` as a Fly user runs them, against a real local fleet: a first
// deploy, a rolling deploy under steady traffic through fly-proxy with not one failed request, a
// release whose check fails (the deploy stops, the previous release keeps serving), blue-green
// and canary, two deploys at once (the Machines API's leases let one through), a release that
// crashes at start (the deploy says why), and machines that were stopped (left so).
describe('fleet launch and fleet deploy', () => {
  const app = 'deploy-app';
  const host = `${app}.fleet.test`;
  let cli: CliFleet;
  let fleet: CliFleet['fleet'];
  let flaps: CliFleet['flaps'];
  let home: string;
  let project: string;
  const run = (args: string[], cwd = project) => cli.run(args, { cwd });

  /**
   * Rewrites fly.toml's release: its VERSION and its check — a tcp check of the app's port, or
   * (`failingCheck`) an http check of a path the app does not serve, the classic broken release.
   */
  const release = (
    version: string,
    options: { failingCheck?: boolean; graceSeconds?: number } = {},
  ) => {
    const base = readFileSync(join(project, 'fly.toml'), 'utf8').split('\n# release')[0]!;
    const check =
      (options.failingCheck ? "type = 'http'\n    path = '/healthz'" : "type = 'tcp'") +
      (options.graceSeconds === undefined ? '' : `\n    grace_period = '${options.graceSeconds}s'`);
    writeFileSync(
      join(project, 'fly.toml'),
      `${base}\n# release\n[env]\n  VERSION = '${version}'\n\n[checks]\n  [checks.alive]\n    ${check}\n    port = 8080\n    interval = '500ms'\n    timeout = '1s'\n`,
    );
  };

  const versions = async () => {
    const machines = (await flaps.listMachines(app)).filter((one) => one.state === 'started');
    return machines.map((machine) => (machine.config.env as Record<string, string>).VERSION).sort();
  };

  /** Who answers through the proxy: the machine and the VERSION of its config. */
  const ask = async (machines: Map<string, string>) => {
    const answer = await request(fleet.urls.proxy, { headers: { host } });
    const text = await answer.body.text();
    if (answer.statusCode !== 200) return `status ${answer.statusCode}: ${text}`;
    const id = (JSON.parse(text) as { machine_id: string }).machine_id;
    if (!machines.has(id)) {
      const machine = await flaps.getMachine(app, id);
      machines.set(id, (machine.config.env as Record<string, string>).VERSION ?? '?');
    }
    return 'ok';
  };

  beforeAll(async () => {
    cli = await startCliFleet('deploy-host');
    ({ fleet, flaps, home } = cli);
    project = mkdtempSync(join(home, 'project-'));
  }, 60_000);

  afterAll(async () => {
    await cli?.stop();
  });

  it('launches: writes a fly.toml that deploys, and creates the app', async () => {
    const launched = await run([
      'launch',
      '--name',
      app,
      '--image',
      'hello',
      '--region',
      'local',
      '--no-deploy',
    ]);
    expect(launched.code, launched.stderr).toBe(0);
    expect(readFileSync(join(project, 'fly.toml'), 'utf8')).toMatch(/app = 'deploy-app'/);
    expect(await flaps.getApp(app)).toBeDefined();
    const again = await run(['launch', '--name', app]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/fly.toml exists: .*--copy-config/);
    // As Fly's `launch --copy-config`: a new app from a fly.toml, renamed by --name, the rest kept.
    const copy = mkdtempSync(join(home, 'copy-'));
    const original = readFileSync(join(project, 'fly.toml'), 'utf8');
    writeFileSync(join(copy, 'fly.toml'), original);
    const copied = await run(
      ['launch', '--copy-config', '--name', 'deploy-copy', '--no-deploy'],
      copy,
    );
    expect(copied.code, copied.stderr).toBe(0);
    const written = readFileSync(join(copy, 'fly.toml'), 'utf8');
    expect(written).toBe(original.replace("app = 'deploy-app'", 'app = "deploy-copy"'));
    expect(await flaps.getApp('deploy-copy')).toBeDefined();
    const nothing = mkdtempSync(join(home, 'empty-'));
    const missing = await run(['launch', '--copy-config', '--no-deploy'], nothing);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--copy-config: .*fly.toml does not exist/);
  });

  it('launches the code of the folder it is run in, and refuses a folder that says nothing of how to run', async () => {
    // A folder as a user has it: the app's code and its image.json, no fly.toml.
    const code = mkdtempSync(join(home, 'code-'));
    for (const file of ['server.mjs', 'image.json'])
      cpSync(join(helloNodeCopy(cli), file), join(code, file));
    const launched = await run(['launch', '--name', 'from-code', '--region', 'local'], code);
    expect(launched.code, launched.stderr).toBe(0);
    expect(readFileSync(join(code, 'fly.toml'), 'utf8')).toMatch(/\[build\]\n {2}dir = '\.'/);
    expect(launched.stderr).toMatch(/built .* into sha256:[0-9a-f]{64}/);
    await expect
      .poll(async () => (await getThroughProxy(fleet.urls.proxy, 'from-code.fleet.test')).body, {
        timeout: 20_000,
      })
      .toMatch(/machine [0-9a-f]{14} in local/);
    // A Node app with no image.json: its package.json's start script runs it, as flyctl's scanner.
    const npmApp = mkdtempSync(join(home, 'npm-'));
    cpSync(join(helloNodeCopy(cli), 'server.mjs'), join(npmApp, 'server.mjs'));
    writeFileSync(
      join(npmApp, 'package.json'),
      JSON.stringify({ name: 'from-npm', scripts: { start: 'node server.mjs' } }),
    );
    const scanned = await run(['launch', '--name', 'from-npm', '--region', 'local'], npmApp);
    expect(scanned.code, scanned.stderr).toBe(0);
    expect(scanned.stderr).toMatch(/found a Node app \(package\.json's start script\)/);
    expect(JSON.parse(readFileSync(join(npmApp, 'image.json'), 'utf8'))).toEqual({
      cmd: ['npm', 'run', 'start'],
    });
    await expect
      .poll(async () => (await getThroughProxy(fleet.urls.proxy, 'from-npm.fleet.test')).body, {
        timeout: 20_000,
      })
      .toMatch(/machine [0-9a-f]{14} in local/);
    const empty = mkdtempSync(join(home, 'nothing-'));
    const refused = await run(['launch', '--name', 'no-code'], empty);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /has no image\.json .*no package\.json with a start script .*--image/,
    );
    expect(existsSync(join(empty, 'fly.toml'))).toBe(false);
    expect(await flaps.getApp('no-code')).toBeUndefined();
  }, 120_000);

  it('deploys a first release: two machines, started and healthy, served through the proxy', async () => {
    release('1');
    const deployed = await run(['deploy', '--wait-timeout', '60s']);
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(deployed.stderr).toMatch(/creating 2 machine/);
    expect(await versions()).toEqual(['1', '1']);
    const seen = new Map<string, string>();
    await expect.poll(() => ask(seen), { timeout: 20_000 }).toBe('ok');
    // Again with nothing changed: nothing to do.
    const same = await run(['deploy']);
    expect(same.stderr).toMatch(/already runs release/);
    // flyctl's `checks list`: the fly.toml's check on each machine, passing.
    const checks = await run(['checks', 'list']);
    expect(checks.code, checks.stderr).toBe(0);
    const passing = checks.stdout.split('\n').filter((line) => /alive\s.*passing\s/.test(line));
    expect(passing).toHaveLength(2);
  }, 120_000);

  it('rolls a new release over while a client sends requests: not one fails', async () => {
    release('2');
    const seen = new Map<string, string>();
    const failures: string[] = [];
    let sending = true;
    let sent = 0;
    const client = (async () => {
      while (sending) {
        const result = await ask(seen).catch((error: Error) => error.message);
        sent++;
        if (result !== 'ok') failures.push(result);
      }
    })();
    const deployed = await run(['deploy', '--strategy', 'rolling', '--wait-timeout', '60s']);
    sending = false;
    await client;
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(deployed.stderr).toMatch(/updated, healthy \[2\/2\]/);
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThan(20);
    expect(await versions()).toEqual(['2', '2']);
  }, 120_000);

  it('stops a deploy whose release fails its check, and the previous release keeps serving', async () => {
    // A new image whose health path is missing: the static file server answers it 404.
    release('3', { failingCheck: true });
    const failed = await run(['deploy', '--image', 'static', '--wait-timeout', '30s']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/failed its check alive/);
    expect(failed.stderr).toMatch(/rolled back to the previous release/);
    await expect.poll(versions, { timeout: 30_000 }).toEqual(['2', '2']);
    const seen = new Map<string, string>();
    for (let index = 0; index < 10; index++) expect(await ask(seen)).toBe('ok');
    expect(new Set(seen.values())).toEqual(new Set(['2']));
  }, 120_000);

  it('deploys blue-green (new machines, then the old ones go) and canary', async () => {
    const before = new Set((await flaps.listMachines(app)).map((machine: Machine) => machine.id));
    release('4');
    const green = await run(['deploy', '--strategy', 'bluegreen', '--wait-timeout', '60s']);
    expect(green.code, green.stderr).toBe(0);
    const after = (await flaps.listMachines(app)).filter((machine) => machine.state === 'started');
    expect(after).toHaveLength(2);
    expect(after.some((machine) => before.has(machine.id))).toBe(false);
    expect(await versions()).toEqual(['4', '4']);

    release('5');
    const canary = await run(['deploy', '--strategy', 'canary', '--wait-timeout', '60s']);
    expect(canary.code, canary.stderr).toBe(0);
    expect(canary.stderr).toMatch(/canary [0-9a-f]{14} healthy, removed/);
    const ids = (await flaps.listMachines(app))
      .filter((machine) => machine.state === 'started')
      .map((machine) => machine.id);
    expect(new Set(ids)).toEqual(new Set(after.map((machine) => machine.id)));
    expect(await versions()).toEqual(['5', '5']);
  }, 180_000);

  it('lets one of two deploys at once through: the other finds the machines leased', async () => {
    // Checks that count only after 3 s keep the first deploy on its leased machines (6 s at
    // least, one machine after the other) however slow the second is to start: started side by
    // side, a fast first deploy could end before the second looked, which then found the release
    // already out and passed too.
    release('6', { graceSeconds: 3 });
    const first = run(['deploy', '--wait-timeout', '60s']);
    const [leased] = await flaps.listMachines(app);
    await until('the first deploy holding its leases', () =>
      flaps.call('GET', `/v1/apps/${app}/machines/${leased?.id}/lease`).then(
        () => true,
        () => undefined,
      ),
    );
    const second = await run(['deploy', '--wait-timeout', '60s']);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/is leased \(another deploy of deploy-app running\?\)/);
    expect((await first).code).toBe(0);
    expect(await versions()).toEqual(['6', '6']);
  }, 120_000);

  it('deploys a folder: infra/examples/hello-node built into an image, uploaded, served', async () => {
    const example = helloNodeCopy(cli);
    await flaps.createApp('hello-node');
    const deployed = await run(['deploy', '--wait-timeout', '60s', '--no-ha'], example);
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(deployed.stderr).toMatch(/built .* into sha256:[0-9a-f]{64}/);
    const [machine] = await flaps.listMachines('hello-node');
    expect((machine!.config as { image: string }).image).toMatch(
      /^hello-node@sha256:[0-9a-f]{64}$/,
    );
    await expect
      .poll(async () => (await getThroughProxy(fleet.urls.proxy, 'hello-node.fleet.test')).body, {
        timeout: 20_000,
      })
      .toMatch(/^Hello from Fleet — machine [0-9a-f]{14} in local/);
    // Unchanged files build the same image: nothing to deploy.
    const again = await run(['deploy'], example);
    expect(again.stderr).toMatch(/already runs release/);
  }, 120_000);

  it('says why a release that crashes at start stopped, and starts the previous release again', async () => {
    const example = join(cli.home, 'hello-node'); // the copy the test above deployed
    const [before] = await flaps.listMachines('hello-node');
    writeFileSync(
      join(example, 'server.mjs'),
      "console.error('no DATABASE_URL, giving up');\nprocess.exit(3);\n",
    );
    const failed = await run(['deploy', '--wait-timeout', '30s'], example);
    expect(failed.code, failed.stderr).toBe(1);
    expect(failed.stderr).toMatch(/stopped instead of starting: it exited with code 3/);
    expect(failed.stderr).toMatch(/its last output:\n {2}no DATABASE_URL, giving up\n/);
    expect(failed.stderr).toContain(`fleet logs -a hello-node -i ${before!.id} --no-tail`);
    expect(failed.stderr).toMatch(/rolled back to the previous release/);
    // It ran before the deploy: it runs again, on the previous release.
    await expect
      .poll(
        async () => {
          const machine = await flaps.getMachine('hello-node', before!.id);
          return [machine.state, (machine.config as { image: string }).image];
        },
        { timeout: 20_000 },
      )
      .toEqual(['started', (before!.config as { image: string }).image]);
  }, 120_000);

  it('updates machines that were stopped and leaves them so, as flyctl does', async () => {
    release('7');
    for (const machine of await flaps.listMachines(app)) await flaps.stopMachine(app, machine.id);
    const states = async () => (await flaps.listMachines(app)).map((machine) => machine.state);
    await expect.poll(states, { timeout: 20_000 }).toEqual(['stopped', 'stopped']);
    const deployed = await run(['deploy', '--wait-timeout', '30s']);
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(deployed.stderr).toMatch(/updated, left stopped \[2\/2\]/);
    const stopped = await flaps.listMachines(app);
    expect(stopped.map((machine) => machine.state)).toEqual(['stopped', 'stopped']);
    expect(
      stopped.map((machine) => (machine.config.env as Record<string, string>).VERSION),
    ).toEqual(['7', '7']);
    for (const machine of stopped) await flaps.startMachine(app, machine.id);
    await expect.poll(versions, { timeout: 20_000 }).toEqual(['7', '7']);
  }, 120_000);

  it('names the problem in a bad fly.toml and deploys nothing', async () => {
    writeFileSync(
      join(project, 'fly.toml'),
      "app = 'deploy-app'\n[http_service]\n  internal_port = 'x'\n",
    );
    const bad = await run(['deploy']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/fly.toml:3: http_service.internal_port must be integer/);
    expect(await versions()).toEqual(['7', '7']);
  });
});
