import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Machine } from '@fleet/flaps-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoMachineConfig, getThroughProxy } from '../src/launcher/demo.js';
import { type CliFleet, startCliFleet } from './cli-fleet.js';

// The `fleet` command line as a person types it, against a real local fleet: every command
// through its bin, with its settings in a folder of the test's, and the exit codes scripts see.
describe('the fleet command line', () => {
  const app = 'cli-app';
  let cli: CliFleet;
  let fleet: CliFleet['fleet'];
  let flaps: CliFleet['flaps'];
  let home: string;
  const run: CliFleet['run'] = (args, options) => cli.run(args, options);

  beforeAll(async () => {
    cli = await startCliFleet('cli-host');
    ({ fleet, flaps, home } = cli);
  }, 60_000);

  afterAll(async () => {
    await cli?.stop();
  });

  it('logs in only with a token the API takes, and keeps it readable by its owner only', async () => {
    const env = { FLEET_API_TOKEN: '' };
    const refused = await run(
      ['auth', 'login', '--token', 'wrong', '--api-url', fleet.urls.flaps],
      {
        env,
      },
    );
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/refused the token/);
    const ok = await run(
      ['auth', 'login', '--token', fleet.secrets.apiToken, '--api-url', fleet.urls.flaps],
      { env: { FLEET_API_URL: '' } },
    );
    expect(ok.code, ok.stderr).toBe(0);
    const settings = join(home, 'config', 'config.json');
    expect(statSync(settings).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(settings, 'utf8'))).toEqual({
      api_url: fleet.urls.flaps,
      token: fleet.secrets.apiToken,
    });
    // Without the environment, the kept settings are used.
    const token = await run(['auth', 'token'], { env: { FLEET_API_TOKEN: '', FLEET_API_URL: '' } });
    expect(token.stdout.trim()).toBe(fleet.secrets.apiToken);
  });

  it('creates and lists apps; destroying one needs --yes', async () => {
    expect((await run(['apps', 'create', app])).code).toBe(0);
    const listed = await run(['apps', 'list', '--json']);
    expect(JSON.parse(listed.stdout).map((one: { name: string }) => one.name)).toContain(app);
    const table = await run(['apps', 'list']);
    expect(table.stdout).toMatch(new RegExp(`${app}\\s.*personal.*deployed\\s*│\\s*0\\s`));
    const taken = await run(['apps', 'create', app]);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(/Error: .*/);
    const careful = await run(['apps', 'destroy', app]);
    expect(careful.code).toBe(2);
    expect(careful.stderr).toMatch(/--yes/);
  });

  it('scales an app by copying its machine, and back', async () => {
    const empty = await run(['scale', 'count', '2', '-a', app]);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/no machine to copy/);
    const nothing = await run(['scale', 'vm', 'shared-cpu-2x', '-a', app]);
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toMatch(/no machines to resize/);
    const first = await flaps.createMachine(app, {
      region: 'local',
      config: demoMachineConfig('hello'),
    });
    await flaps.waitMachine(app, first.id, 'started');
    const up = await run(['scale', 'count', '3', '-a', app]);
    expect(up.code, up.stderr).toBe(0);
    const machines = await flaps.listMachines(app);
    expect(machines.filter((machine) => machine.state === 'started')).toHaveLength(3);
    expect(new Set(machines.map((machine) => (machine.config as { image: string }).image))).toEqual(
      new Set(['hello']),
    );
    const shown = await run(['scale', 'show', '-a', app, '--json']);
    expect(JSON.parse(shown.stdout)).toEqual([
      {
        process_group: 'app',
        count: 3,
        cpu_kind: 'shared',
        cpus: 1,
        memory_mb: 256,
        regions: { local: 3 },
      },
    ]);
    const down = await run(['scale', 'count', '1', '-a', app]);
    expect(down.code, down.stderr).toBe(0);
    const left = (await flaps.listMachines(app)).filter((machine) => machine.state !== 'destroyed');
    expect(left).toHaveLength(1);
    const table = await run(['scale', 'show', '-a', app]);
    expect(table.stdout).toContain(`VM Resources for app: ${app}`);
    expect(table.stdout).toMatch(/app\s.*1\s.*shared\s.*1\s.*256 MB\s.*local\(1\)/);
    expect((await run(['scale', 'count', 'many', '-a', app])).code).toBe(2);
    // An app that is not there is named: the API keeps Fly's words, "app not found".
    const missing = await run(['scale', 'show', '-a', 'no-such-app']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('Error: app no-such-app not found');
  }, 120_000);

  it('shows status from the fly.toml of the working directory, and says what is wrong with one', async () => {
    const project = mkdtempSync(join(home, 'project-'));
    writeFileSync(join(project, 'fly.toml'), `app = "${app}"\nprimary_region = "local"\n`);
    const status = await run(['status', '--json'], { cwd: project });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stderr).toBe(''); // nothing but the data: no library's warning either
    const parsed = JSON.parse(status.stdout) as { app: { name: string }; machines: Machine[] };
    expect(parsed.app.name).toBe(app);
    expect(parsed.machines).toHaveLength(1);
    const table = await run(['status'], { cwd: project });
    expect(table.stdout).toContain(parsed.machines[0]!.id);
    writeFileSync(join(project, 'fly.toml'), 'app = \n');
    const broken = await run(['status'], { cwd: project });
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/not valid TOML/);
    const nowhere = await run(['status'], { cwd: home });
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr).toMatch(/pass -a APP/);
  });

  it("runs a command in a machine and exits with the command's code", async () => {
    const [machine] = (await flaps.listMachines(app)).filter((one) => one.state === 'started');
    const said = await run([
      'machines',
      'exec',
      machine!.id,
      '-a',
      app,
      '--',
      'printenv',
      'FLY_MACHINE_ID',
    ]);
    expect(said).toMatchObject({ code: 0, stdout: `${machine!.id}\n` });
    const failed = await run([
      'machines',
      'exec',
      machine!.id,
      '-a',
      app,
      '--',
      'sh',
      '-c',
      'exit 7',
    ]);
    expect(failed.code).toBe(7);
    // flyctl's way: one quoted command line, which the machine's shell splits.
    const line = await run(['machines', 'exec', machine!.id, '-a', app, 'echo $FLY_MACHINE_ID ok']);
    expect(line).toMatchObject({ code: 0, stdout: `${machine!.id} ok\n` });
  });

  it('stops and starts a machine, waiting for each', async () => {
    const [machine] = await flaps.listMachines(app);
    const stopped = await run(['machines', 'stop', machine!.id, '-a', app]);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect((await flaps.getMachine(app, machine!.id)).state).toBe('stopped');
    const started = await run(['machine', 'start', machine!.id, '-a', app]);
    expect(started.code, started.stderr).toBe(0);
    expect((await flaps.getMachine(app, machine!.id)).state).toBe('started');
    const status = await run(['machines', 'status', machine!.id, '-a', app]);
    expect(status.stdout).toMatch(/State\s+started/);
    expect(status.stdout).toMatch(/Events/);
  });

  it('suspends, cordons and kills machines as flyctl does, and lists their ids with -q', async () => {
    const quiet = await run(['machines', 'list', '-q', '-a', app]);
    const ids = (await flaps.listMachines(app)).map((one) => one.id);
    expect(quiet.stdout).toBe(ids.map((one) => `${one}\n`).join(''));
    const [machine] = (await flaps.listMachines(app)).filter((one) => one.state === 'started');
    const id = machine!.id;
    const suspended = await run(['machines', 'suspend', id, '-a', app]);
    expect(suspended, suspended.stderr).toMatchObject({ code: 0, stderr: `${id} suspended\n` });
    expect((await flaps.getMachine(app, id)).state).toBe('suspended');
    expect((await run(['machines', 'start', id, '-a', app])).code).toBe(0);
    expect((await flaps.getMachine(app, id)).state).toBe('started');
    expect((await run(['machines', 'cordon', id, '-a', app])).code).toBe(0);
    expect((await flaps.getMachine(app, id)).cordoned).toBe(true);
    const status = await run(['machines', 'status', id, '-a', app]);
    expect(status.stdout).toMatch(/Cordoned\s+yes/);
    expect((await run(['machines', 'uncordon', id, '-a', app])).code).toBe(0);
    expect((await flaps.getMachine(app, id)).cordoned).toBe(false);
    // SIGKILL, as flyctl's `machine kill`: the machine's process ends by that signal.
    const killed = await run(['machines', 'kill', id, '-a', app]);
    expect(killed, killed.stderr).toMatchObject({ code: 0, stderr: `${id} killed\n` });
    await expect
      .poll(async () => {
        const events = (await flaps.getMachine(app, id)).events ?? [];
        return events.some((event) => event.request?.exit_event?.signal === 'SIGKILL');
      })
      .toBe(true);
    const missing = await run(['machines', 'kill', 'nope', '-a', app]);
    expect(missing.code).toBe(1);
  });

  it("updates a machine's env and size as flyctl's machine update; refuses an empty change", async () => {
    const [machine] = (await flaps.listMachines(app)).filter((one) => one.state === 'started');
    const id = machine!.id;
    const updated = await run([
      ...['machines', 'update', id, '-a', app, '-e', 'COLOUR=blue', '-e', 'SIZE=l'],
      ...['--vm-memory', '512', '--json'],
    ]);
    expect(updated.code, updated.stderr).toBe(0);
    const after = JSON.parse(updated.stdout) as Machine;
    expect(after).toMatchObject({ state: 'started' });
    expect(after.instance_id).not.toBe(machine!.instance_id);
    expect(after.config.env).toMatchObject({ COLOUR: 'blue', SIZE: 'l' });
    expect(after.config.guest).toMatchObject({ memory_mb: 512 });
    const said = await run(['machines', 'exec', id, '-a', app, 'echo $COLOUR']);
    expect(said).toMatchObject({ code: 0, stdout: 'blue\n' });
    const nothing = await run(['machines', 'update', id, '-a', app]);
    expect(nothing).toMatchObject({ code: 2, stderr: expect.stringMatching(/nothing to change/) });
    const bad = await run(['machines', 'update', id, '-a', app, '--vm-memory', '100']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/memory_mb/);
  });

  it('clones a machine and gives every machine a new size', async () => {
    const [machine] = await flaps.listMachines(app);
    const cloned = await run(['machines', 'clone', machine!.id, '-a', app, '--json']);
    expect(cloned.code, cloned.stderr).toBe(0);
    const clone = JSON.parse(cloned.stdout) as Machine;
    expect(clone).toMatchObject({ state: 'started', region: machine!.region });
    expect(clone.id).not.toBe(machine!.id);
    const sized = await run(['scale', 'vm', 'shared-cpu-2x', '--memory', '1024', '-a', app]);
    expect(sized.code, sized.stderr).toBe(0);
    for (const one of await flaps.listMachines(app))
      expect(one.config.guest).toEqual({ cpu_kind: 'shared', cpus: 2, memory_mb: 1024 });
    expect((await run(['scale', 'vm', 'huge', '-a', app])).code).toBe(2);
    // flyctl's `scale memory`: the memory alone, each machine's CPUs kept.
    const memory = await run(['scale', 'memory', '2048', '-a', app]);
    expect(memory.code, memory.stderr).toBe(0);
    expect(memory.stderr).toMatch(/is resized: shared 2 CPU\(s\), 2048 MB/);
    for (const one of await flaps.listMachines(app))
      expect(one.config.guest).toEqual({ cpu_kind: 'shared', cpus: 2, memory_mb: 2048 });
    expect((await run(['scale', 'memory', 'lots', '-a', app])).stderr).toMatch(
      /memory \(megabytes\) is a whole number above 0, not lots/,
    );
    await flaps.destroyMachine(app, clone.id, true);
  }, 60_000);

  it('creates, lists, extends and destroys a volume', async () => {
    const created = await run(['volumes', 'create', 'data', '-a', app, '--size', '2', '--json']);
    expect(created.code, created.stderr).toBe(0);
    const volume = JSON.parse(created.stdout) as { id: string; size_gb: number };
    expect(volume.size_gb).toBe(2);
    const listed = await run(['volumes', 'list', '-a', app]);
    expect(listed.stdout).toMatch(new RegExp(`${volume.id}\\s.*data.*2GB`));
    expect((await run(['volumes', 'extend', volume.id, '-a', app, '--size', '3'])).code).toBe(0);
    expect((await flaps.listVolumes(app))[0]).toMatchObject({ id: volume.id, size_gb: 3 });
    // Mounted by a running machine, the answer says whether it needs a restart (its worker grows
    // a mounted filesystem only where the kernel lets it), and the plain output says what to do.
    const machine = await flaps.createMachine(app, {
      region: 'local',
      config: { ...demoMachineConfig('hello'), mounts: [{ volume: volume.id, path: '/data' }] },
    });
    await flaps.waitMachine(app, machine.id, 'started');
    const asJson = await run(['volumes', 'extend', volume.id, '-a', app, '--size', '4', '--json']);
    const answer = JSON.parse(asJson.stdout) as {
      needs_restart: boolean;
      volume: { size_gb: number };
    };
    expect(answer.volume.size_gb).toBe(4);
    const plain = await run(['volumes', 'extend', volume.id, '-a', app, '--size', '5']);
    expect(plain.stderr.includes(`fleet machines restart ${machine.id}`), plain.stderr).toBe(
      answer.needs_restart,
    );
    await flaps.destroyMachine(app, machine.id, true);
    // flyctl's `volumes snapshots create|list`, and a new volume restored from one.
    const taken = await run(['volumes', 'snapshots', 'create', volume.id, '-a', app, '--json']);
    expect(taken.code, taken.stderr).toBe(0);
    const snapshot = JSON.parse(taken.stdout) as { id: string };
    const snapshots = await run(['volumes', 'snapshots', 'list', volume.id, '-a', app]);
    expect(snapshots.stdout).toMatch(new RegExp(`${snapshot.id}\\s`));
    const restored = await run([
      'volumes',
      'create',
      'copy',
      '-a',
      app,
      '--size',
      '5',
      '--snapshot-id',
      snapshot.id,
      '--json',
    ]);
    expect(restored.code, restored.stderr).toBe(0);
    const copy = JSON.parse(restored.stdout) as { id: string };
    expect((await run(['volumes', 'destroy', copy.id, '-a', app, '--yes'])).code).toBe(0);
    expect((await run(['volumes', 'destroy', volume.id, '-a', app])).code).toBe(2);
    expect((await run(['volumes', 'destroy', volume.id, '-a', app, '--yes'])).code).toBe(0);
    expect(await flaps.listVolumes(app)).toEqual([]);
  });

  it('routes a custom hostname to the app once added, until removed', async () => {
    const added = await run(['certs', 'add', 'www.cli-shop.test', '-a', app]);
    expect(added.code, added.stderr).toBe(0);
    const listed = JSON.parse((await run(['certs', 'list', '-a', app, '--json'])).stdout);
    expect(listed).toEqual([{ hostname: 'www.cli-shop.test', app, issued: false }]);
    // The edge routes the name to the app (plain HTTP here: the certificate waits for TLS).
    await expect
      .poll(async () => (await getThroughProxy(fleet.urls.proxy, 'www.cli-shop.test')).status, {
        timeout: 20_000,
      })
      .toBe(200);
    const shown = await run(['certs', 'show', 'www.cli-shop.test', '-a', app]);
    expect(shown.stdout).toMatch(/Issued\s+not yet/);
    expect((await run(['certs', 'add', 'not a host', '-a', app])).code).toBe(1);
    expect((await run(['certs', 'remove', 'www.cli-shop.test', '-a', app])).code).toBe(0);
    await expect
      .poll(async () => (await getThroughProxy(fleet.urls.proxy, 'www.cli-shop.test')).status, {
        timeout: 20_000,
      })
      .toBe(404);
  });

  it('prints the logs of every machine with machine id and region, kept and live', async () => {
    const [machine] = await flaps.listMachines(app);
    const kept = await run(['logs', '-a', app, '--no-tail']);
    expect(kept.code, kept.stderr).toBe(0);
    expect(kept.stdout).toMatch(
      new RegExp(`${app}\\[${machine!.id}\\] local \\[info\\] hello: machine ${machine!.id}`),
    );
    // Live: a restart of the machine prints its line again while `fleet logs` follows.
    const child = cli.spawn(['logs', '-a', app, '--json']);
    let out = '';
    child.stdout!.on('data', (chunk) => {
      out += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const count = () => out.split('\n').filter((line) => line.includes('listening on')).length;
    await expect.poll(count, { timeout: 20_000 }).toBeGreaterThan(0);
    const before = count();
    await flaps.restartMachine(app, machine!.id);
    await expect.poll(count, { timeout: 20_000 }).toBeGreaterThan(before);
    const line = JSON.parse(out.split('\n').find((text) => text.includes('listening on'))!);
    expect(line).toMatchObject({ instance: machine!.id, region: 'local', meta: { app } });
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  }, 60_000);

  it('says where it could not reach, with its own exit code', async () => {
    const nowhere = await run(['apps', 'list'], { env: { FLEET_API_URL: 'http://127.0.0.1:9' } });
    expect(nowhere.code).toBe(3);
    expect(nowhere.stderr).toMatch(/cannot reach the Machines API at http:\/\/127\.0\.0\.1:9/);
    const unknown = await run(['frobnicate']);
    expect(unknown.code).toBe(2);
  });
});
