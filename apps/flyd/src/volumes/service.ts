import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from '@fleet/service';
import { flydError } from '../errors.js';
import type { MachineConfig } from '../machines/machine-store.js';
import type { Publisher } from '../publishing/publisher.js';
import type { Disks } from '../runtime/disks.js';
import { giveTo, type MachineUser } from '../runtime/machine-users.js';
import {
  blockSizeBytes,
  copyDirectory,
  copyInto,
  directoryDigest,
  directoryUsage,
  tarDirectory,
  untarDirectory,
  untarInto,
} from './files.js';
import { type MountConfig, mountLink, mountOf } from './mounts.js';
import { type VolumeUsage, volumeRowStatement, volumeView } from './view.js';
import type { SnapshotRecord, VolumeRecord, VolumeStore } from './volume-store.js';

export interface VolumeServiceOptions {
  dataDir: string;
  hostId: string;
  region: string;
  /** Volumes as disks of their size (`--disks`); without, plain folders. */
  disks?: Disks;
  /** Whether a machine runs (and so holds its volume mounted). */
  running: (machineId: string) => boolean;
  logger: Logger;
}

export interface CreateVolumeRequest {
  id?: string;
  app: string;
  name: string;
  size_gb?: number;
  encrypted?: boolean;
  snapshot_retention?: number;
  auto_backup_enabled?: boolean;
  snapshot_id?: string;
  source_volume_id?: string;
}

/** The header a migrating worker sends a volume's record in (base64url JSON), beside its tar body. */
export const volumeRecordHeader = 'fleet-volume';

/** How long a migrate's target waits for the source's rows to reach its corrosion. */
export const rowWaitMs = 10_000;

const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
/** Fly's id shape: a prefix and 16 lowercase alphanumerics. */
export function newVolumeId(prefix: 'vol_' | 'vs_'): string {
  return prefix + [...randomBytes(16)].map((byte) => alphabet[byte % alphabet.length]).join('');
}

/**
 * The volumes of this worker: each a directory `<data-dir>/volumes/<id>` with a size — an ext4
 * disk of that size mounted on it (`disks.ts`), or with disks off a plain folder — attached to
 * at most one machine. Snapshots are copies under `<data-dir>/snapshots/<id>`. Every change is
 * written to flyd's database and published to corrosion's `volumes` / `volume_snapshots`.
 */
export class VolumeService {
  constructor(
    private readonly store: VolumeStore,
    private readonly publisher: Publisher,
    private readonly options: VolumeServiceOptions,
  ) {
    mkdirSync(join(options.dataDir, 'volumes'), { recursive: true });
    mkdirSync(join(options.dataDir, 'snapshots'), { recursive: true });
  }

  dir(id: string): string {
    return join(this.options.dataDir, 'volumes', id);
  }

  /** Volumes not destroyed (a gauge). */
  count(): number {
    return this.store.list().filter((volume) => volume.state !== 'destroyed').length;
  }

  get(id: string): VolumeRecord {
    const volume = this.store.get(id);
    if (!volume) throw flydError('FLYD_ERR_VOLUME_NOT_FOUND', `volume ${id} not found`);
    return volume;
  }

  list(app?: string): VolumeRecord[] {
    return this.store.list(app);
  }

  /** An empty volume, or a copy of a local snapshot (`snapshot_id`) or volume (`source_volume_id`). */
  async create(request: CreateVolumeRequest): Promise<VolumeRecord> {
    const id = request.id ?? newVolumeId('vol_');
    if (this.store.get(id)) return this.get(id); // a retried create
    let source: string | undefined;
    let sizeGb = request.size_gb;
    if (request.snapshot_id !== undefined) {
      const snapshot = this.store.snapshot(request.snapshot_id);
      if (snapshot?.app !== request.app)
        throw flydError('FLYD_ERR_VOLUME_NOT_FOUND', `snapshot ${request.snapshot_id} not found`);
      source = join(this.options.dataDir, 'snapshots', snapshot.id);
      sizeGb ??= this.store.get(snapshot.volume_id)?.size_gb;
    } else if (request.source_volume_id !== undefined) {
      const from = this.get(request.source_volume_id);
      if (from.state !== 'created' || from.app !== request.app)
        throw flydError('FLYD_ERR_VOLUME_NOT_FOUND', `volume ${from.id} is ${from.state}`);
      source = this.dir(from.id);
      sizeGb = Math.max(sizeGb ?? from.size_gb, from.size_gb);
    }
    const copy = source;
    const disks = this.options.disks;
    const fill = copy === undefined ? undefined : (dir: string) => copyInto(copy, dir);
    if (disks) await disks.create(id, sizeGb ?? 1, fill);
    else if (copy) await copyDirectory(copy, this.dir(id));
    // Its owner's alone until a machine is given it (machine-users.ts): no other machine enters.
    else mkdirSync(this.dir(id), { recursive: true, mode: 0o700 });
    const now = new Date().toISOString();
    this.store.put({
      id,
      app: request.app,
      name: request.name,
      region: this.options.region,
      state: 'created',
      size_gb: sizeGb ?? 1,
      encrypted: request.encrypted ?? true,
      snapshot_retention: request.snapshot_retention ?? 5,
      auto_backup_enabled: request.auto_backup_enabled ?? false,
      attached_machine_id: null,
      created_at: now,
      updated_at: now,
    });
    await this.#publish(id);
    return this.get(id);
  }

  async update(
    id: string,
    changes: { snapshot_retention?: number; auto_backup_enabled?: boolean },
  ): Promise<VolumeRecord> {
    this.#live(id);
    const defined = Object.fromEntries(
      Object.entries(changes).filter(([, value]) => value !== undefined && value !== null),
    );
    this.store.update(id, defined);
    await this.#publish(id);
    return this.get(id);
  }

  /**
   * Grows the volume; a smaller size is refused. A disk grows online where the kernel lets it,
   * else at once when no machine runs on it, else at its machine's next start (`needsRestart`).
   */
  async extend(
    id: string,
    sizeGb: number,
  ): Promise<{ volume: VolumeRecord; needsRestart: boolean }> {
    const volume = this.#live(id);
    if (sizeGb < volume.size_gb) {
      throw flydError(
        'FLYD_ERR_VOLUME_SHRINK',
        `volume ${id} is ${volume.size_gb} GB: it cannot shrink to ${sizeGb} GB`,
      );
    }
    let needsRestart = false;
    if (this.options.disks?.has(id)) {
      const machine = volume.attached_machine_id;
      const held = machine !== null && this.options.running(machine);
      ({ needsRestart } = await this.options.disks.grow(id, sizeGb, held));
    }
    this.store.update(id, { size_gb: sizeGb });
    await this.#publish(id);
    return { volume: this.get(id), needsRestart };
  }

  /** Removes the volume's directory (and disk); refused while a machine mounts it. */
  async destroy(id: string, machineExists: (machineId: string) => boolean): Promise<VolumeRecord> {
    const volume = this.get(id);
    if (volume.state === 'destroyed') return volume;
    if (volume.attached_machine_id && machineExists(volume.attached_machine_id)) {
      throw flydError(
        'FLYD_ERR_VOLUME_ATTACHED',
        `volume ${id} is attached to machine ${volume.attached_machine_id}; destroy the machine first`,
      );
    }
    await this.#removeFiles(id);
    this.store.update(id, { state: 'destroyed', attached_machine_id: null });
    await this.#publish(id);
    return this.get(id);
  }

  /** Copies the volume's directory as a snapshot. */
  async snapshot(id: string): Promise<SnapshotRecord> {
    const volume = this.#live(id);
    const snapshotId = newVolumeId('vs_');
    const dir = join(this.options.dataDir, 'snapshots', snapshotId);
    await copyDirectory(this.dir(id), dir);
    const snapshot: SnapshotRecord = {
      id: snapshotId,
      volume_id: id,
      app: volume.app,
      size: directoryUsage(dir).bytes,
      digest: directoryDigest(dir),
      created_at: new Date().toISOString(),
    };
    this.store.addSnapshot(snapshot);
    await this.publisher.rowChanged(`snapshot/${snapshotId}`, [
      [
        `INSERT INTO volume_snapshots (id, volume_id, app, host_id, size, created_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET host_id = excluded.host_id, size = excluded.size`,
        [snapshotId, id, volume.app, this.options.hostId, snapshot.size, snapshot.created_at],
      ],
    ]);
    return snapshot;
  }

  snapshots(id: string): SnapshotRecord[] {
    this.get(id);
    return this.store.snapshots(id);
  }

  /**
   * Checks a machine config's mounts before a create or update: at most one, a live volume of
   * this worker and of the app, not attached to another machine.
   */
  checkMounts(config: MachineConfig, app: string, machineId?: string): MountConfig | undefined {
    const mounts = (config.mounts ?? []) as MountConfig[];
    if (!Array.isArray(mounts))
      throw flydError('FLYD_ERR_BAD_CONFIG', 'config.mounts must be an array');
    const [mount] = mounts;
    if (mount === undefined) return undefined;
    if (mounts.length > 1)
      throw flydError('FLYD_ERR_BAD_CONFIG', 'config.mounts: a machine mounts one volume at most');
    if (typeof mount.volume !== 'string' || typeof mount.path !== 'string')
      throw flydError('FLYD_ERR_BAD_CONFIG', 'config.mounts[0] needs volume and path');
    mountLink('/', mount.path); // refuses a path that leaves the machine's folder
    const volume = this.store.get(mount.volume);
    if (volume?.state !== 'created' || volume.app !== app) {
      throw flydError(
        'FLYD_ERR_BAD_CONFIG',
        `config.mounts[0].volume: volume ${mount.volume} of app ${app} is not on this worker`,
      );
    }
    if (volume.attached_machine_id && volume.attached_machine_id !== machineId) {
      throw flydError(
        'FLYD_ERR_VOLUME_ATTACHED',
        `volume ${mount.volume} is attached to machine ${volume.attached_machine_id}`,
      );
    }
    return mount;
  }

  /** Attaches the mounted volume to the machine (idempotent). */
  async attach(machineId: string, config: MachineConfig): Promise<void> {
    const mount = mountOf(config);
    const volume = mount && this.store.get(mount.volume);
    if (!volume || volume.attached_machine_id === machineId) return;
    this.store.update(volume.id, { attached_machine_id: machineId });
    await this.#publish(volume.id);
  }

  /** Detaches every volume of a destroyed machine (idempotent). */
  async detach(machineId: string): Promise<void> {
    for (const volume of this.store.list()) {
      if (volume.attached_machine_id !== machineId) continue;
      this.store.update(volume.id, { attached_machine_id: null });
      await this.#publish(volume.id);
    }
  }

  /**
   * Gives a machine its volume: a symlink `<machine dir>/<mount path without its leading slash>`
   * to the volume's directory (replaced if it exists), its disk mounted there (grown first if an
   * extend waited for the machine's restart).
   */
  async link(
    machineDir: string,
    config: MachineConfig,
    user: MachineUser | undefined,
  ): Promise<void> {
    const mount = mountOf(config);
    const volume = mount && this.store.get(mount.volume);
    if (!mount || !volume) return;
    const disks = this.options.disks;
    if (disks && !disks.has(volume.id)) await this.#adopt(disks, volume);
    if (disks?.has(volume.id)) await disks.prepare(volume.id);
    const link = mountLink(machineDir, mount.path);
    mkdirSync(dirname(link), { recursive: true });
    if (lstatSync(link, { throwIfNoEntry: false })) unlinkSync(link);
    symlinkSync(this.dir(mount.volume), link);
    // The volume is its machine's: a volume another machine had (a fork, a migrate) changes hands.
    if (user) giveTo(this.dir(mount.volume), user);
  }

  /**
   * A volume made as a folder (before disks, or with them off) becomes a disk of its size when
   * its machine next starts; one whose files do not fit its size stays a folder, with a warning.
   */
  async #adopt(disks: Disks, volume: VolumeRecord): Promise<void> {
    const { bytes } = directoryUsage(this.dir(volume.id));
    const why =
      bytes > volume.size_gb * 1024 ** 3 * 0.95
        ? `its files (${bytes} bytes) do not fit its ${volume.size_gb} GB`
        : await disks.adopt(volume.id, volume.size_gb, copyInto).then(
            () => undefined,
            (error: Error) => error.message,
          );
    if (why)
      this.options.logger.warn(`volume ${volume.id} stays a folder, its size not enforced: ${why}`);
    else await this.#publish(volume.id); // its fstype and blocks are the disk's now
  }

  /** The environment naming a machine's volume: its real directory and its mount path. */
  mountEnv(config: MachineConfig): Record<string, string> {
    const mount = mountOf(config);
    if (!mount || !this.store.get(mount.volume)) return {};
    return { FLEET_VOLUME_DIR: this.dir(mount.volume), FLEET_VOLUME_MOUNT: mount.path };
  }

  /** The volume's directory as a tar stream (a migrate sends it to the target worker). */
  export(id: string): { stream: Readable; done: Promise<void> } {
    this.#live(id);
    return tarDirectory(this.dir(id));
  }

  /**
   * Takes a volume another worker sends (a migrate): its directory from the tar stream, its
   * record as sent, and its row in corrosion with this worker's host id. Idempotent.
   */
  async import(record: VolumeRecord, input: Readable): Promise<VolumeRecord> {
    const disks = this.options.disks;
    if (disks) await disks.create(record.id, record.size_gb, (dir) => untarInto(input, dir));
    else await untarDirectory(input, this.dir(record.id));
    if (!(await this.publisher.awaitRow('volumes', record.id, record.updated_at, rowWaitMs))) {
      throw flydError(
        'FLYD_ERR_FAILED',
        `volume ${record.id}: its row from the source worker has not reached this worker's corrosion yet`,
      );
    }
    this.store.put({
      ...record,
      region: this.options.region,
      updated_at: new Date().toISOString(),
    });
    await this.#publish(record.id);
    return this.get(record.id);
  }

  /** Forgets a volume that moved to another worker, without touching its corrosion row. */
  async release(id: string): Promise<void> {
    this.publisher.rowForget(`volume/${id}`);
    await this.#removeFiles(id);
    this.store.delete(id);
  }

  /**
   * Mounts every volume disk of this worker (flyd's start: a reboot, or a flyd stopped before).
   * One that fails does not keep flyd down: its machine's launch tries again and says why. Answers
   * the failures.
   */
  async mountAll(): Promise<string[]> {
    const disks = this.options.disks;
    const failures: string[] = [];
    for (const volume of this.store.list()) {
      if (volume.state !== 'created' || !disks?.has(volume.id)) continue;
      await disks.mount(volume.id).catch((error: Error) => {
        failures.push(`volume ${volume.id}: ${error.message}`);
      });
    }
    return failures;
  }

  /**
   * Unmounts the disks but those of the machines left running (flyd's exit; with
   * `--stop-machines-on-exit` every one): a worker's data directory is left with no mount in it.
   * A machine left running keeps its volume mounted, as the next flyd finds it.
   */
  async unmountIdle(leftRunning: Set<string>): Promise<void> {
    const disks = this.options.disks;
    if (!disks) return;
    for (const id of disks.mounted()) {
      const machine = this.store.get(id)?.attached_machine_id;
      if (!machine || !leftRunning.has(machine)) await disks.unmount(id);
    }
  }

  /** Publishes the volume's row again (its usage now; or after a failed migrate: it is still here). */
  republish(id: string): Promise<void> {
    return this.store.get(id) ? this.#publish(id) : Promise.resolve();
  }

  /** Fly's Volume object, with usage measured now. */
  view(volume: VolumeRecord): Record<string, unknown> {
    return volumeView(volume, this.options.hostId, this.#usage(volume));
  }

  /** The disk's blocks as its filesystem counts them; a folder's files in 4 KiB blocks. */
  #usage(volume: VolumeRecord): VolumeUsage {
    const disks = this.options.disks;
    if (volume.state === 'created' && disks?.isMounted(volume.id))
      return { fstype: 'ext4', ...disks.usage(volume.id) };
    const blocks = Math.floor((volume.size_gb * 1024 ** 3) / blockSizeBytes);
    const used = volume.state === 'created' ? directoryUsage(this.dir(volume.id)).blocks : 0;
    const free = Math.max(0, blocks - used);
    return {
      fstype: 'dir',
      blockSize: blockSizeBytes,
      blocks,
      blocksFree: free,
      blocksAvail: free,
    };
  }

  async #removeFiles(id: string): Promise<void> {
    if (this.options.disks) await this.options.disks.remove(id);
    else rmSync(this.dir(id), { recursive: true, force: true });
  }

  #live(id: string): VolumeRecord {
    const volume = this.get(id);
    if (volume.state !== 'created' || !existsSync(this.dir(id)))
      throw flydError('FLYD_ERR_VOLUME_NOT_FOUND', `volume ${id} is ${volume.state}`);
    return volume;
  }

  #publish(id: string): Promise<void> {
    const volume = this.get(id);
    return this.publisher.rowChanged(`volume/${id}`, [
      volumeRowStatement(volume, this.options.hostId, this.#usage(volume)),
    ]);
  }
}
