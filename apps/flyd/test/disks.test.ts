import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { mountsUnder } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callExpecting } from './expect-status.js';
import { call, FlydFixture, hello, inState, runsIdle } from './flyd-fixture.js';

// A volume's size and a machine root's are a disk's: a machine that fills its volume or its root
// gets ENOSPC there, and the worker's disk — where flyd.db, corrosion.db and every other
// machine's files live — is out of its reach (one tenant must not take the worker down).
// Mounting needs root, as in CI and on a worker; as anyone else they are folders (`off`, below).
const root = process.getuid?.() === 0;

interface Exec {
  stdout: string;
  stderr: string;
  exit_code: number;
}

interface VolumeView {
  id: string;
  size_gb: number;
  fstype: string;
  blocks: number;
  block_size: number;
  blocks_free: number;
}

const gib = 1024 ** 3;

describe.runIf(root)('volume disks', () => {
  const fixture = new FlydFixture();
  let api: string;
  const volumesDir = join(fixture.dir, 'flyd', 'volumes');
  const rootsDir = join(fixture.dir, 'flyd', 'roots');
  const exec = async (id: string, cmd: string): Promise<Exec> =>
    present(await call(api, 'POST', `/v1/machines/${id}/exec`, { cmd }), 'an answer')
      .body as unknown as Exec;
  const volumeOf = async (id: string) =>
    (await callExpecting(api, 'GET', `/v1/volumes/${id}`)).body as unknown as VolumeView;
  const createVolume = async (body: Record<string, unknown>) =>
    (await callExpecting(api, 'POST', '/v1/volumes', { app: 'disks', name: 'data', ...body }))
      .body as unknown as VolumeView;
  const startWith = async (
    volume?: string,
    extra: Record<string, unknown> = {},
  ): Promise<string> => {
    const id = randomBytes(7).toString('hex');
    const mounts = volume === undefined ? [] : [{ volume, path: '/data' }];
    const config = { ...hello, mounts, ...extra };
    await callExpecting(api, 'POST', '/v1/machines', { id, app: 'disks', config });
    await inState(api, id, 'started');
    return id;
  };
  // What the machine sees of a folder's disk (its volume's, data/, by default): df's 1K blocks.
  const dfKb = async (machine: string, path = 'data/') =>
    Number((await exec(machine, `df -k --output=size ${path} | tail -1`)).stdout.trim());

  beforeAll(async () => {
    api = await fixture.start();
  });
  afterAll(() => fixture.close());

  it('is an ext4 disk of its size: filling it is ENOSPC for the machine alone', async () => {
    const volume = await createVolume({ size_gb: 1 });
    expect(volume).toMatchObject({ fstype: 'ext4', size_gb: 1 });
    expect(volume.blocks * volume.block_size).toBeGreaterThan(0.9 * gib);
    expect(volume.blocks * volume.block_size).toBeLessThanOrEqual(gib);
    expect(mountsUnder(volumesDir)).toEqual([join(volumesDir, volume.id)]);
    const machine = await startWith(volume.id);
    // fallocate takes the blocks for real (unlike a sparse file) without writing a gigabyte.
    const filled = await exec(machine, 'fallocate -l 900M data/fill && echo filled');
    expect(filled).toMatchObject({ stdout: 'filled\n', exit_code: 0 });
    const over = await exec(machine, 'fallocate -l 200M data/more');
    expect(over.exit_code).not.toBe(0);
    expect(over.stderr).toMatch(/No space left on device/);
    // The volume's view counts what the filesystem counts.
    const full = await volumeOf(volume.id);
    expect(full.blocks_free * full.block_size).toBeLessThan(0.1 * gib);
    // Its root, a disk of its own, still takes writes.
    expect((await exec(machine, 'echo fine > note && cat note')).stdout).toBe('fine\n');
  });

  it("makes a machine's root a disk of its rootfs.size_gb, afresh at every start", async () => {
    const machine = await startWith(undefined, { rootfs: { size_gb: 1 } });
    const kb = await dfKb(machine, '.');
    expect(kb).toBeGreaterThan(0.9 * 1024 ** 2);
    expect(kb).toBeLessThan(1.05 * 1024 ** 2);
    expect(mountsUnder(rootsDir)).toContain(join(rootsDir, machine));
    const over = await exec(machine, 'fallocate -l 2G big');
    expect(over.stderr).toMatch(/No space left on device/);
    // Temporary files go there too, and a restart leaves none of it (no lost+found either).
    expect((await exec(machine, 'echo "$TMPDIR"')).stdout).toBe(`${join(rootsDir, machine)}/tmp\n`);
    await exec(machine, 'echo scratch > "$TMPDIR/file"');
    await callExpecting(api, 'POST', `/v1/machines/${machine}/stop`);
    await inState(api, machine, 'stopped');
    await callExpecting(api, 'POST', `/v1/machines/${machine}/start`);
    await inState(api, machine, 'started');
    const left = 'for f in big tmp/file lost+found; do [ -e "$f" ] && echo "$f"; done; echo end';
    expect((await exec(machine, left)).stdout).toBe('end\n');
    // An update to another size starts the machine on a root of that size.
    const update = { config: { ...hello, rootfs: { size_gb: 2 } } };
    await callExpecting(api, 'POST', `/v1/machines/${machine}`, update);
    await inState(api, machine, 'started');
    expect(await dfKb(machine, '.')).toBeGreaterThan(1.9 * 1024 ** 2);
    // A root without rootfs.size_gb is --machine-root-gb's (8 by default).
    const plain = await startWith();
    expect(await dfKb(plain, '.')).toBeGreaterThan(7.5 * 1024 ** 2);
    for (const id of [machine, plain])
      await callExpecting(api, 'DELETE', `/v1/machines/${id}?kill=true`);
    await runsIdle(api);
    for (const id of [machine, plain]) {
      expect(mountsUnder(rootsDir)).not.toContain(join(rootsDir, id));
      expect(readdirSync(rootsDir).filter((name) => name.startsWith(id))).toEqual([]);
    }
  });

  it('grows on extend, online or at the next start, and never loses what it holds', async () => {
    const volume = await createVolume({ size_gb: 1 });
    const machine = await startWith(volume.id);
    await exec(machine, 'echo kept > data/file');
    expect(await dfKb(machine)).toBeLessThan(1.05 * 1024 ** 2);
    const extended = (
      await callExpecting(api, 'POST', `/v1/volumes/${volume.id}/extend`, { size_gb: 2 })
    ).body as { needs_restart: boolean; volume: VolumeView };
    expect(extended.volume.size_gb).toBe(2);
    // Online where the kernel lets a mounted ext4 grow; in a container it may not, and the
    // machine then sees the new size from its next start (Fly's `needs_restart`).
    if (extended.needs_restart) {
      expect(await dfKb(machine)).toBeLessThan(1.05 * 1024 ** 2);
      await callExpecting(api, 'POST', `/v1/machines/${machine}/stop`);
      await inState(api, machine, 'stopped');
      await callExpecting(api, 'POST', `/v1/machines/${machine}/start`);
      await inState(api, machine, 'started');
    }
    expect(await dfKb(machine)).toBeGreaterThan(1.9 * 1024 ** 2);
    expect((await exec(machine, 'cat data/file')).stdout).toBe('kept\n');
    expect((await volumeOf(volume.id)).blocks * extended.volume.block_size).toBeGreaterThan(
      1.9 * gib,
    );
    // A volume no machine runs on grows at once.
    const idle = await createVolume({ size_gb: 1 });
    const grown = (
      await callExpecting(api, 'POST', `/v1/volumes/${idle.id}/extend`, { size_gb: 3 })
    ).body as { needs_restart: boolean; volume: VolumeView };
    expect(grown.needs_restart).toBe(false);
    expect(grown.volume.blocks * grown.volume.block_size).toBeGreaterThan(2.9 * gib);
  });

  it('is unmounted when flyd stops and mounted again when it starts; a destroy removes it', async () => {
    const volume = await createVolume({ size_gb: 1 });
    const machine = await startWith(volume.id);
    await exec(machine, 'echo before > data/file');
    await fixture.stopFlyd(); // stops its machines (--stop-machines-on-exit), then the disks
    expect(mountsUnder(volumesDir)).toEqual([]);
    expect(mountsUnder(rootsDir)).toEqual([]);
    expect(readdirSync(join(volumesDir, volume.id))).toEqual([]); // the bare mount point
    api = await fixture.startFlyd();
    expect(mountsUnder(volumesDir)).toContain(join(volumesDir, volume.id));
    await inState(api, machine, 'started');
    expect((await exec(machine, 'cat data/file')).stdout).toBe('before\n');
    // A killed flyd leaves its disks mounted: the next one takes them as they are.
    await fixture.kill();
    // That one exits leaving its machines running (flyd's default): a machine that runs on
    // keeps its root and volume mounted, and the next flyd adopts it as it is.
    fixture.stopMachinesOnExit = false;
    try {
      api = await fixture.startFlyd();
      await inState(api, machine, 'started');
      expect((await exec(machine, 'cat data/file')).stdout).toBe('before\n');
      await fixture.stopFlyd();
    } finally {
      fixture.stopMachinesOnExit = true;
    }
    expect(mountsUnder(volumesDir)).toContain(join(volumesDir, volume.id));
    expect(mountsUnder(rootsDir)).toContain(join(rootsDir, machine));
    api = await fixture.startFlyd();
    await inState(api, machine, 'started');
    expect(
      (await exec(machine, 'cat data/file && df -k --output=target data/ | tail -1')).stdout,
    ).toBe(`before\n${join(volumesDir, volume.id)}\n`);
    await callExpecting(api, 'DELETE', `/v1/machines/${machine}?kill=true`);
    await runsIdle(api);
    await callExpecting(api, 'DELETE', `/v1/volumes/${volume.id}`);
    expect(mountsUnder(volumesDir)).not.toContain(join(volumesDir, volume.id));
    expect(existsSync(join(volumesDir, volume.id))).toBe(false);
    expect(existsSync(join(volumesDir, `${volume.id}.ext4`))).toBe(false);
  });

  it('copies a snapshot or a volume into a new disk of its own', async () => {
    const volume = await createVolume({ size_gb: 1 });
    const machine = await startWith(volume.id);
    await exec(machine, 'mkdir -p data/d && echo copied > data/d/file');
    const fork = await createVolume({ source_volume_id: volume.id });
    expect(fork).toMatchObject({ fstype: 'ext4', size_gb: 1 });
    const snapshot = (await callExpecting(api, 'POST', `/v1/volumes/${volume.id}/snapshots`))
      .body as { id: string };
    const restored = await createVolume({ snapshot_id: snapshot.id, size_gb: 2 });
    expect(restored.blocks * restored.block_size).toBeGreaterThan(1.9 * gib);
    await callExpecting(api, 'DELETE', `/v1/machines/${machine}?kill=true`);
    for (const copy of [fork.id, restored.id]) {
      const reader = await startWith(copy);
      expect((await exec(reader, 'cat data/d/file')).stdout, copy).toBe('copied\n');
      await callExpecting(api, 'DELETE', `/v1/machines/${reader}?kill=true`);
    }
    await runsIdle(api);
  });
});

describe.runIf(root)('a volume made as a folder', () => {
  it('becomes a disk of its size, with its files, when its machine next starts', async () => {
    const flags = ['--disks', 'off']; // the worker before disks; emptied for the next flyd
    const fixture = new FlydFixture(flags);
    try {
      let api = await fixture.start();
      const volume = (
        await callExpecting(api, 'POST', '/v1/volumes', { app: 'disks', name: 'data' })
      ).body.id as string;
      const config = { ...hello, mounts: [{ volume, path: '/data' }] };
      const machine = (await callExpecting(api, 'POST', '/v1/machines', { app: 'disks', config }))
        .body.id as string;
      await inState(api, machine, 'started');
      const exec = async (cmd: string) =>
        (
          present(await call(api, 'POST', `/v1/machines/${machine}/exec`, { cmd }), 'an answer')
            .body as unknown as Exec
        ).stdout;
      await exec('mkdir -p data/d && echo kept > data/d/file && ln -s d/file data/link');
      await fixture.stopFlyd(); // stops the machine
      flags.length = 0;
      api = await fixture.startFlyd();
      await inState(api, machine, 'started');
      const volumesDir = join(fixture.dir, 'flyd', 'volumes');
      expect(mountsUnder(volumesDir)).toEqual([join(volumesDir, volume)]);
      expect(
        await exec('cat data/d/file data/link && df -k --output=size data/ | tail -1'),
      ).toMatch(/^kept\nkept\n\s*\d{6}\n$/);
      expect((await callExpecting(api, 'GET', `/v1/volumes/${volume}`)).body).toMatchObject({
        fstype: 'ext4',
      });
      expect(readdirSync(volumesDir).sort()).toEqual([volume, `${volume}.ext4`]);
    } finally {
      await fixture.close();
    }
  });
});

describe('--disks', () => {
  it('off: a volume is a folder whose size is counted, not enforced; a root is a folder', async () => {
    const fixture = new FlydFixture(['--disks', 'off']);
    try {
      const api = await fixture.start();
      const volume = (
        await callExpecting(api, 'POST', '/v1/volumes', { app: 'disks', name: 'data' })
      ).body as unknown as VolumeView;
      expect(volume).toMatchObject({ fstype: 'dir', size_gb: 1, block_size: 4096 });
      const config = { ...hello, mounts: [{ volume: volume.id, path: '/data' }] };
      const machine = (await callExpecting(api, 'POST', '/v1/machines', { app: 'disks', config }))
        .body.id as string;
      await inState(api, machine, 'started');
      // No disk: the one mount is the machine's network namespace, kept on a file (as root).
      const netns = join(fixture.dir, 'flyd', 'netns');
      expect(mountsUnder(fixture.dir).filter((path) => !path.startsWith(netns))).toEqual([]);
    } finally {
      await fixture.close();
    }
  });

  it('refuses a setting that is not one, naming the flag', async () => {
    const fixture = new FlydFixture(['--disks', 'ext4']);
    try {
      await expect(fixture.start()).rejects.toThrow(/--disks must be 'auto' or 'off'/);
    } finally {
      await fixture.close();
    }
  });
});
