import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../src/launcher/paths.js';
import { type CliFleet, helloNodeCopy, startCliFleet } from './cli-fleet.js';

interface Mount {
  volume: string;
  path: string;
  name?: string;
}

// `[mounts]` deployed as flyctl does, against a real local fleet on a copy of
// infra/examples/hello-node: each machine gets a volume of its own (the source's name, the
// initial size) in its region and mounts it at the destination; a later deploy keeps each
// machine on its volume; `fleet scale count` gives new machines new volumes; strategies that
// would need two machines per volume are refused.
describe('fleet deploy with [mounts]', () => {
  const app = 'hello-node';
  let cli: CliFleet;
  let example: string;
  const run = (args: string[]) => cli.run(args, { cwd: example });
  const withGreeting = (greeting: string) => {
    const base = readFileSync(
      join(repoRoot, 'infra', 'examples', 'hello-node', 'fly.toml'),
      'utf8',
    );
    writeFileSync(
      join(example, 'fly.toml'),
      `${base.replace(/GREETING = .*/, `GREETING = '${greeting}'`)}\n[mounts]\n  source = 'data'\n  destination = '/data'\n  initial_size = '2gb'\n`,
    );
  };
  /** Each started machine with its mount, and the app's volumes by id. */
  const state = async () => {
    const machines = (await cli.flaps.listMachines(app)).filter(
      (machine) => machine.state !== 'destroyed',
    );
    const volumes = new Map(
      (await cli.flaps.listVolumes(app)).map((volume) => [volume.id, volume]),
    );
    return machines.map((machine) => {
      const mount = (machine.config.mounts as Mount[] | undefined)?.[0];
      return { machine, mount, volume: mount ? volumes.get(mount.volume) : undefined };
    });
  };

  beforeAll(async () => {
    cli = await startCliFleet('mounts-host');
    example = helloNodeCopy(cli);
    await cli.flaps.createApp(app);
  }, 60_000);
  afterAll(async () => {
    await cli?.stop();
  });

  it('creates each machine on a volume of its own, mounted at the destination', async () => {
    withGreeting('v1');
    const deployed = await run(['deploy', '--wait-timeout', '60s', '--no-ha']);
    expect(deployed.code, deployed.stderr).toBe(0);
    const [only, ...others] = await state();
    expect(others).toEqual([]);
    expect(only!.mount).toMatchObject({ path: '/data', name: 'data' });
    expect(only!.volume).toMatchObject({
      name: 'data',
      size_gb: 2,
      region: only!.machine.region,
      attached_machine_id: only!.machine.id,
    });
  }, 120_000);

  it("mounts a volume made beforehand (Fly's guide: volumes create, then deploy) instead of a new one", async () => {
    // A second app, deployed for the first time after its volume was made (a 1 GB one: it is used
    // as it is, not replaced by one of initial_size).
    const other = 'hello-vol-first';
    await cli.flaps.createApp(other);
    const made = await run(['volumes', 'create', 'data', '-a', other, '-s', '1', '--json']);
    expect(made.code, made.stderr).toBe(0);
    const volume = JSON.parse(made.stdout) as { id: string };
    const deployed = await run(['deploy', '-a', other, '--wait-timeout', '60s', '--no-ha']);
    expect(deployed.code, deployed.stderr).toBe(0);
    const [machine] = await cli.flaps.listMachines(other);
    expect((machine!.config.mounts as Mount[])[0]).toMatchObject({
      volume: volume.id,
      path: '/data',
    });
    expect(await cli.flaps.listVolumes(other)).toMatchObject([
      { id: volume.id, size_gb: 1, attached_machine_id: machine!.id },
    ]);
    await cli.flaps.destroyMachine(other, machine!.id, true);
  }, 120_000);

  it('keeps each machine on its volume through the next deploy', async () => {
    const [before] = await state();
    withGreeting('v2');
    const deployed = await run(['deploy', '--wait-timeout', '60s']);
    expect(deployed.code, deployed.stderr).toBe(0);
    const [after] = await state();
    expect(after!.machine.id).toBe(before!.machine.id);
    expect((after!.machine.config.env as Record<string, string>).GREETING).toBe('v2');
    expect(after!.mount?.volume).toBe(before!.mount?.volume);
  }, 120_000);

  it('gives machines added by scale count a new volume each', async () => {
    const scaled = await run(['scale', 'count', '2']);
    expect(scaled.code, scaled.stderr).toBe(0);
    const machines = await state();
    expect(machines).toHaveLength(2);
    const volumeIds = machines.map((one) => one.mount?.volume);
    expect(new Set(volumeIds).size).toBe(2);
    for (const one of machines)
      expect(one.volume).toMatchObject({
        name: 'data',
        size_gb: 2,
        attached_machine_id: one.machine.id,
      });
  }, 120_000);

  it('refuses canary and bluegreen with [mounts] (exit 2), touching nothing', async () => {
    const before = await state();
    withGreeting('v3');
    for (const strategy of ['canary', 'bluegreen']) {
      const refused = await run(['deploy', '--strategy', strategy]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(
        `the ${strategy} strategy needs a second machine per volume`,
      );
    }
    expect((await state()).map((one) => one.machine.id)).toEqual(
      before.map((one) => one.machine.id),
    );
  });
});
