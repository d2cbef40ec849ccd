import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { present } from '@fleet/service/invariant';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Fleet, hello, startFleet } from './fleet.js';

type Body = Record<string, unknown>;

// As root (CI, a worker) a worker's flyd makes each volume an ext4 disk of its size, whose
// filesystem counts its blocks (a little under the nominal size); otherwise a folder, counted as
// the nominal size in 4 KiB blocks.
const disk = process.getuid?.() === 0;
const gbBlocks = 262_144;
/** A volume's `blocks` for `sizeGb`, as the worker's kind of volume counts them. */
const blocksOf = (sizeGb: number) =>
  disk
    ? expect.toSatisfy(
        (blocks: number) => blocks > 0.9 * sizeGb * gbBlocks && blocks <= sizeGb * gbBlocks,
      )
    : sizeGb * gbBlocks;

// Volumes and migrate through the Machines API, over a real corrosion, flaps and three real
// flyds: w1 and w2 in ams (a migrate moves between them), w3 alone in fra.
describe('flaps volumes and migrate', () => {
  let fleet: Fleet;
  /** The machine that answers a request for the app through the edge proxy (hello says who). */
  const routedTo = async () => {
    // undici's request, not fetch: fetch does not let a caller set Host.
    const answer = await request(present(fleet.proxy, 'fleet.proxy'), {
      headers: { host: 'vols.fleet.test' },
      headersTimeout: 5_000,
      bodyTimeout: 5_000,
    }).catch(() => undefined);
    const text = answer ? await answer.body.text() : '';
    return answer?.statusCode === 200
      ? (JSON.parse(text) as { machine_id: string }).machine_id
      : undefined;
  };
  const call: Fleet['call'] = (...args) => fleet.call(...args);
  /** A path on one worker's flyd data dir. */
  const onWorker = (hostId: string, ...path: string[]) =>
    join(present(fleet.workers[hostId], 'fleet.workers[hostId]').dataDir, ...path);
  /** Runs a shell command in the machine's environment; its stdout. */
  const shell = async (machineId: string, cmd: string) => {
    const answer = await call('POST', `/v1/apps/vols/machines/${machineId}/exec`, { cmd });
    expect(answer.body).toMatchObject({ exit_code: 0 });
    return answer.body.stdout as string;
  };
  const waitStarted = async (machineId: string) =>
    expect(
      (await call('GET', `/v1/apps/vols/machines/${machineId}/wait?state=started&timeout=15`))
        .status,
    ).toBe(200);

  beforeAll(async () => {
    fleet = await startFleet({
      workers: [
        { hostId: 'w1', region: 'ams' },
        { hostId: 'w2', region: 'ams' },
        { hostId: 'w3', region: 'fra' },
      ],
      flydArgs: ['--stop-timeout-ms', '2000'],
      edgeProxy: { domain: 'fleet.test', region: 'ams' },
    });
    expect((await call('POST', '/v1/apps', { app_name: 'vols' })).status).toBe(201);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  let volumeId = '';
  let volumeHost = '';
  let machineId = '';
  let snapshotId = '';

  it('creates, lists, gets, updates and extends a volume in Fly shapes; it never shrinks', async () => {
    const created = await call('POST', '/v1/apps/vols/volumes', {
      name: 'data',
      region: 'ams',
      size_gb: 1,
    });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({
      name: 'data',
      state: 'created',
      size_gb: 1,
      region: 'ams',
      encrypted: true,
      attached_machine_id: null,
      attached_alloc_id: null,
      block_size: 4096,
      blocks: blocksOf(1),
      blocks_free: blocksOf(1),
      blocks_avail: blocksOf(1),
      fstype: disk ? 'ext4' : 'dir',
      snapshot_retention: 5,
      auto_backup_enabled: false,
      host_status: 'ok',
    });
    volumeId = created.body.id as string;
    volumeHost = created.body.host_id as string;
    expect(volumeId).toMatch(/^vol_[a-z0-9]{16}$/);
    expect(created.body.zone).toMatch(/^[0-9a-f]{4}$/);
    expect(['w1', 'w2']).toContain(volumeHost);

    expect((await call('GET', '/v1/apps/vols/volumes')).body).toMatchObject([{ id: volumeId }]);
    expect((await call('GET', `/v1/apps/vols/volumes/${volumeId}`)).body).toMatchObject({
      id: volumeId,
      name: 'data',
    });
    expect((await call('GET', '/v1/apps/vols/volumes/vol_0000000000000000')).status).toBe(404);

    const updated = await call('PUT', `/v1/apps/vols/volumes/${volumeId}`, {
      snapshot_retention: 10,
      auto_backup_enabled: true,
    });
    expect(updated.body).toMatchObject({ snapshot_retention: 10, auto_backup_enabled: true });

    const extended = await call('PUT', `/v1/apps/vols/volumes/${volumeId}/extend`, { size_gb: 3 });
    expect(extended.body).toMatchObject({
      needs_restart: false,
      volume: { id: volumeId, size_gb: 3, blocks: blocksOf(3) },
    });
    const shrink = await call('PUT', `/v1/apps/vols/volumes/${volumeId}/extend`, { size_gb: 2 });
    expect(shrink).toMatchObject({ status: 400, body: { code: 'FLYD_ERR_VOLUME_SHRINK' } });
    expect((await call('GET', '/v1/apps/vols/volumes')).body).toMatchObject([{ size_gb: 3 }]);
    // A bad name is told by its rule (it was "name must be a string" for a string).
    const badName = await call('POST', '/v1/apps/vols/volumes', {
      name: 'Bad Name',
      region: 'ams',
    });
    expect(badName).toMatchObject({
      status: 400,
      body: {
        code: 'BAD_REQUEST',
        error: expect.stringContaining(
          'name must be a volume name of 1 to 30 lowercase letters, digits and underscores',
        ),
      },
    });
    expect((await call('GET', '/v1/apps/vols/volumes')).body).toHaveLength(1);
    // So is a bad id in the path (it was the bare pattern, ^vol_[0-9a-z]{16}$).
    for (const [method, path, body] of [
      ['GET', '/v1/apps/vols/volumes/nonexist', undefined],
      ['PUT', '/v1/apps/vols/volumes/nonexist/extend', { size_gb: 5 }],
      ['DELETE', '/v1/apps/vols/volumes/vol_UPPERCASE000000', undefined],
    ] as const) {
      expect(await call(method, path, body)).toMatchObject({
        status: 400,
        body: {
          code: 'BAD_REQUEST',
          error: 'invalid_argument: id must be a volume id like vol_0123456789abcdef',
        },
      });
    }
    const tooBig = await call('PUT', `/v1/apps/vols/volumes/${volumeId}/extend`, { size_gb: 501 });
    expect(tooBig).toMatchObject({
      status: 400,
      body: { error: 'invalid_argument: size_gb must be an integer >= 1 and <= 500' },
    });
  });

  it("places a machine that mounts a volume on the volume's worker, and refuses a wrong one", async () => {
    const elsewhere = await call('POST', '/v1/apps/vols/machines', {
      region: 'fra',
      config: { ...hello, mounts: [{ volume: volumeId, path: '/data' }] },
    });
    expect(elsewhere).toMatchObject({ status: 400, body: { code: 'FLAPS_ERR_VOLUME_REGION' } });
    const unknown = await call('POST', '/v1/apps/vols/machines', {
      config: { ...hello, mounts: [{ volume: 'vol_0000000000000000', path: '/data' }] },
    });
    expect(unknown).toMatchObject({ status: 404, body: { code: 'FLAPS_ERR_VOLUME_NOT_FOUND' } });

    const outside = await call('POST', '/v1/apps/vols/machines', {
      config: { ...hello, mounts: [{ volume: volumeId, path: '/' }] },
    });
    // Refused by flaps' schema before placement (flyd's refuses it too).
    expect(outside).toMatchObject({ status: 400, body: { code: 'FLAPS_ERR_BAD_CONFIG' } });
    expect(outside.body.error).toMatch(/^invalid_argument: config.mounts\[0\].path must be/);

    const created = await call('POST', '/v1/apps/vols/machines', {
      region: 'ams',
      config: { ...hello, mounts: [{ volume: volumeId, path: '/data', name: 'data' }] },
    });
    expect(created.status).toBe(200);
    machineId = created.body.id as string;
    expect(created.body.host_id).toBe(volumeHost);
    await waitStarted(machineId);
    expect((await call('GET', `/v1/apps/vols/volumes/${volumeId}`)).body).toMatchObject({
      attached_machine_id: machineId,
    });

    const unmounted = await call('POST', `/v1/apps/vols/machines/${machineId}`, { config: hello });
    expect(unmounted).toMatchObject({ status: 400, body: { code: 'FLYD_ERR_BAD_CONFIG' } });
    const second = await call('POST', '/v1/apps/vols/machines', {
      config: { ...hello, mounts: [{ volume: volumeId, path: '/data' }] },
    });
    expect(second).toMatchObject({ status: 412, body: { code: 'FLAPS_ERR_VOLUME_ATTACHED' } });
    const deleted = await call('DELETE', `/v1/apps/vols/volumes/${volumeId}`);
    expect(deleted).toMatchObject({ status: 412, body: { code: 'FLYD_ERR_VOLUME_ATTACHED' } });
  });

  it('gives the machine its volume as a folder whose files survive a restart', async () => {
    // $HOME/data is the symlink to the volume; FLEET_VOLUME_DIR names the real directory.
    const empty = (await call('GET', `/v1/apps/vols/volumes/${volumeId}`)).body;
    await shell(
      machineId,
      'head -c 10000 /dev/zero > "$HOME/data/zeros" && echo kept > "$HOME/data/note"',
    );
    expect(await shell(machineId, 'cat "$FLEET_VOLUME_DIR/note"; echo "$FLEET_VOLUME_MOUNT"')).toBe(
      'kept\n/data\n',
    );
    const volume = (await call('GET', `/v1/apps/vols/volumes/${volumeId}`)).body;
    // 10,000 bytes take 3 blocks of 4 KiB, the 5-byte note one more.
    expect(volume.blocks_free).toBe((empty.blocks_free as number) - 4);
    const used = (volume.blocks as number) - (volume.blocks_free as number);

    expect((await call('POST', `/v1/apps/vols/machines/${machineId}/restart`)).status).toBe(200);
    await waitStarted(machineId);
    expect(await shell(machineId, 'cat "$HOME/data/note"')).toBe('kept\n');
    // The list (corrosion's rows) has the usage as of the machine's stop within the restart,
    // against the nominal size (a disk's own count of its blocks is the live GET's).
    expect((await call('GET', '/v1/apps/vols/volumes')).body).toMatchObject([
      { id: volumeId, blocks: 3 * gbBlocks, blocks_free: 3 * gbBlocks - used },
    ]);
  });

  it('snapshots a volume and copies it into new volumes (from a snapshot, or forked)', async () => {
    const snapshot = await call('POST', `/v1/apps/vols/volumes/${volumeId}/snapshots`);
    expect(snapshot.status).toBe(200);
    snapshotId = snapshot.body.id as string;
    // The files' bytes (a disk's also count its empty lost+found).
    const size = disk
      ? expect.toSatisfy((bytes: number) => bytes > 10_005 && bytes < 30_000)
      : 10_005;
    expect(snapshot.body).toMatchObject({ status: 'created', size });
    expect(snapshot.body.id).toMatch(/^vs_[a-z0-9]{16}$/);
    expect(snapshot.body.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const listed = await call('GET', `/v1/apps/vols/volumes/${volumeId}/snapshots`);
    expect(listed.body).toMatchObject([{ id: snapshot.body.id, size }]);
    expect((listed.body as unknown as { created_at: string }[])[0]?.created_at).toMatch(/^\d{4}-/);

    const restored = await call('POST', '/v1/apps/vols/volumes', {
      name: 'restored',
      snapshot_id: snapshot.body.id,
    });
    const forked = await call('POST', '/v1/apps/vols/volumes', {
      name: 'forked',
      source_volume_id: volumeId,
    });
    for (const copy of [restored, forked]) {
      expect(copy.body).toMatchObject({ host_id: volumeHost, size_gb: 3, state: 'created' });
      // The copy holds the same files: a machine mounting it reads them.
      const reader = await call('POST', '/v1/apps/vols/machines', {
        config: { ...hello, mounts: [{ volume: copy.body.id, path: '/mnt/copy' }] },
      });
      expect(reader.body.host_id).toBe(volumeHost);
      await waitStarted(reader.body.id as string);
      expect(await shell(reader.body.id as string, 'cat "$HOME/mnt/copy/note"')).toBe('kept\n');
      expect(
        (await call('DELETE', `/v1/apps/vols/machines/${reader.body.id}?force=true`)).status,
      ).toBe(200);
      const gone = await call('DELETE', `/v1/apps/vols/volumes/${copy.body.id}`);
      expect(gone.body).toMatchObject({ id: copy.body.id, state: 'destroyed' });
    }
    const names = ((await call('GET', '/v1/apps/vols/volumes')).body as unknown as Body[]).map(
      (volume) => volume.name,
    );
    expect(names).toEqual(['data']);
  });

  it('migrates the machine and its volume to the other worker of the region, keeping its id', async () => {
    const target = volumeHost === 'w1' ? 'w2' : 'w1';
    const moved = await call('POST', `/v1/apps/vols/machines/${machineId}/migrate`);
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ id: machineId, host_id: target, state: 'started' });
    // The proxy-visible row (corrosion) names the new worker; so does the volume's.
    expect((await call('GET', '/v1/apps/vols/machines')).body).toMatchObject([
      { id: machineId, host_id: target, state: 'started' },
    ]);
    expect((await call('GET', `/v1/apps/vols/volumes/${volumeId}`)).body).toMatchObject({
      host_id: target,
      attached_machine_id: machineId,
    });
    expect((await call('GET', '/v1/apps/vols/volumes')).body).toMatchObject([
      { id: volumeId, host_id: target },
    ]);
    expect(await shell(machineId, 'cat "$HOME/data/note"; wc -c < "$FLEET_VOLUME_DIR/zeros"')).toBe(
      'kept\n10000\n',
    );
    // The edge proxy routes to it on its new worker (the old process is gone).
    let routed: string | undefined;
    for (let attempt = 0; attempt < 200 && routed !== machineId; attempt++) {
      routed = await routedTo();
      if (routed !== machineId) await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(routed).toBe(machineId);
    // Nothing is left on the source worker.
    expect((await fleet.flyd(volumeHost, 'GET', `/v1/machines/${machineId}`)).status).toBe(404);
    expect((await fleet.flyd(volumeHost, 'GET', `/v1/volumes/${volumeId}`)).status).toBe(404);
    expect(existsSync(onWorker(volumeHost, 'volumes', volumeId))).toBe(false);
    expect(existsSync(onWorker(volumeHost, 'machines', machineId))).toBe(false);

    // And back, naming the worker; a worker of another region is refused.
    const wrong = await call('POST', `/v1/apps/vols/machines/${machineId}/migrate`, {
      host_id: 'w3',
    });
    expect(wrong).toMatchObject({ status: 400, body: { code: 'FLAPS_ERR_BAD_REQUEST' } });
    const back = await call('POST', `/v1/apps/vols/machines/${machineId}/migrate`, {
      host_id: volumeHost,
    });
    expect(back.body).toMatchObject({ id: machineId, host_id: volumeHost, state: 'started' });
    expect(await shell(machineId, 'cat "$HOME/data/note"')).toBe('kept\n');
  });

  it('migrates a machine without a volume; one that was not running stays so', async () => {
    const plain = await call('POST', '/v1/apps/vols/machines', {
      region: 'ams',
      config: hello,
      skip_launch: true,
    });
    const from = plain.body.host_id as string;
    const moved = await call('POST', `/v1/apps/vols/machines/${plain.body.id}/migrate`);
    expect(moved.body).toMatchObject({ id: plain.body.id, state: 'created' });
    expect(moved.body.host_id).not.toBe(from);
    expect((await fleet.flyd(from, 'GET', `/v1/machines/${plain.body.id}`)).status).toBe(404);
    expect(
      (await call('DELETE', `/v1/apps/vols/machines/${plain.body.id}?force=true`)).status,
    ).toBe(200);
  });

  it('answers insufficient_capacity when the region has no other worker', async () => {
    const lonely = await call('POST', '/v1/apps/vols/machines', {
      region: 'fra',
      config: hello,
      skip_launch: true,
    });
    expect(lonely.body.host_id).toBe('w3');
    const refused = await call('POST', `/v1/apps/vols/machines/${lonely.body.id}/migrate`);
    expect(refused).toMatchObject({ status: 412, body: { code: 'FLAPS_ERR_NO_CAPACITY' } });
    expect(refused.body.error).toMatch(/insufficient_capacity/);
    await call('DELETE', `/v1/apps/vols/machines/${lonely.body.id}?force=true`);
  });

  it('deletes a volume once its machine is destroyed', async () => {
    expect((await call('DELETE', `/v1/apps/vols/machines/${machineId}?force=true`)).status).toBe(
      200,
    );
    const deleted = await call('DELETE', `/v1/apps/vols/volumes/${volumeId}`);
    expect(deleted.body).toMatchObject({
      id: volumeId,
      state: 'destroyed',
      attached_machine_id: null,
    });
    expect((await call('GET', '/v1/apps/vols/volumes')).body).toEqual([]);
    expect((await call('GET', `/v1/apps/vols/volumes/${volumeId}`)).status).toBe(404);
    // Its directory is gone from the worker; its snapshot (a copy under flyd's data dir) stays.
    expect(existsSync(onWorker(volumeHost, 'volumes', volumeId))).toBe(false);
    expect(existsSync(onWorker(volumeHost, 'snapshots', snapshotId))).toBe(true);
  });
});
