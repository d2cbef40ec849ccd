import { execFile } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  realpathSync,
  renameSync,
  rmSync,
  statfsSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { mountsUnder, UsageError } from '@fleet/service';
import { findTools } from './find-tool.js';

const run = promisify(execFile);
const tools = ['mkfs.ext4', 'mount', 'umount', 'losetup', 'resize2fs', 'e2fsck'] as const;
type Tool = (typeof tools)[number];
/** Bound on one tool's run: a stuck mount must not hold a volume call forever. */
const toolTimeoutMs = 120_000;

/** A volume's filesystem as its view reports it (Fly's `blocks`, `block_size`, …). */
export interface DiskUsage {
  blockSize: number;
  blocks: number;
  blocksFree: number;
  blocksAvail: number;
}

/** The disks of a worker: its volumes' and its machines' roots'. */
export interface WorkerDisks {
  volumes: Disks;
  roots: Disks;
}

/**
 * Disks of a size, as Fly's volumes and root filesystems are: each an ext4 filesystem in a sparse
 * image file beside its folder (`<dir>/<id>.ext4`, flyd's alone), loop-mounted on the folder
 * (`nosuid`, `nodev`) for as long as flyd holds it. A machine that fills its volume or its root
 * gets ENOSPC there; the worker's disk, and flyd's and corrosion's databases on it, stay out of
 * its reach. Needs root, e2fsprogs, util-linux and loop devices; `auto` checks them by making and
 * mounting a small one.
 *
 * A filesystem grows on `extend`: online when the kernel lets it (`resize2fs` on the mounted
 * loop device), else the next time no machine holds it — at its machine's next start or flyd's
 * — marked by `<id>.ext4.grow` until then.
 */
export class Disks {
  private constructor(
    private readonly dir: string,
    private readonly paths: Record<Tool, string>,
  ) {}

  /**
   * Disks as `setting` says: `off`, or `auto` (disks in `volumes/` of the data directory and in
   * `rootsDir` when this worker can make and mount them, else the reason it cannot). Anything
   * else is a UsageError.
   */
  static async configure(
    setting: string,
    dataDir: string,
    rootsDir: string,
  ): Promise<{ disks: WorkerDisks } | { off: string }> {
    if (setting === 'off') return { off: '--disks off' };
    if (setting !== 'auto')
      throw new UsageError(`--disks must be 'auto' or 'off', not ${JSON.stringify(setting)}`);
    if (process.geteuid?.() !== 0) return { off: 'flyd is not root, so it cannot mount disks' };
    const found = findTools(tools);
    if ('missing' in found)
      return { off: `${found.missing} is not installed (e2fsprogs, util-linux)` };
    const [volumes, roots] = [join(dataDir, 'volumes'), rootsDir].map(
      (dir) => new Disks(folder(dir), found.paths),
    ) as [Disks, Disks];
    const probe = `.probe-${process.pid}`;
    try {
      await volumes.#make(probe, 8 * 1024 ** 2);
      await volumes.unmount(probe);
    } catch (error) {
      return { off: `a disk could not be made here: ${(error as Error).message}` };
    } finally {
      await volumes.remove(probe).catch(() => undefined);
    }
    return { disks: { volumes, roots } };
  }

  /** The folder a volume is mounted on (its folder either way). */
  folder(id: string): string {
    return join(this.dir, id);
  }

  /**
   * A new empty disk of `sizeGb` for `id`, mounted on its folder, whatever was there before gone
   * (a machine's root at its first start, or when its size changed). No lost+found: the folder
   * is the machine's.
   */
  async fresh(id: string, sizeGb: number): Promise<void> {
    await this.discard(id);
    await this.#make(id, sizeGb * 1024 ** 3);
    rmSync(join(this.folder(id), 'lost+found'), { recursive: true, force: true });
  }

  /** Whether `id` is a disk of `sizeGb` (a root kept for its machine's next start). */
  isOfSize(id: string, sizeGb: number): boolean {
    return statSync(this.#image(id), { throwIfNoEntry: false })?.size === sizeGb * 1024 ** 3;
  }

  /** Whether the volume is a disk (volumes made before disks, or with them off, are folders). */
  has(id: string): boolean {
    return existsSync(this.#image(id));
  }

  /**
   * Makes the volume's disk of `sizeGb` and mounts it, filled by `fill` (a copy, an archive)
   * before it appears: the disk is built under `.partial` names and renamed into place, so a
   * crash halfway leaves no half-filled volume (a retried create starts over).
   */
  async create(id: string, sizeGb: number, fill?: (dir: string) => Promise<void>): Promise<void> {
    await this.remove(id); // what a crash halfway left
    const partial = `${id}.partial`;
    await this.remove(partial);
    await this.#make(partial, sizeGb * 1024 ** 3);
    try {
      await fill?.(this.folder(partial));
      await this.unmount(partial);
    } catch (error) {
      await this.remove(partial);
      throw error;
    }
    renameSync(this.#image(partial), this.#image(id));
    rmSync(this.folder(partial), { recursive: true, force: true });
    await this.mount(id);
  }

  /**
   * Makes the folder `id` (a volume made before disks, or with them off) a disk of `sizeGb` with
   * the same files: copied into a new disk, which then takes the folder's place (the folder is
   * set aside while the disk is renamed in, then removed). Not to be called while anything holds
   * the folder. A failure leaves the folder as it was.
   */
  async adopt(
    id: string,
    sizeGb: number,
    copy: (from: string, to: string) => Promise<void>,
  ): Promise<void> {
    const aside = `${this.folder(id)}.folder`;
    if (this.has(id)) {
      rmSync(aside, { recursive: true, force: true }); // a crash after the swap left it
      return;
    }
    await this.create(`${id}.adopt`, sizeGb, (dir) => copy(this.folder(id), dir));
    await this.unmount(`${id}.adopt`);
    renameSync(this.folder(id), aside);
    renameSync(this.#image(`${id}.adopt`), this.#image(id));
    rmSync(this.folder(`${id}.adopt`), { recursive: true, force: true });
    await this.mount(id);
    rmSync(aside, { recursive: true, force: true });
  }

  /** Mounts the volume on its folder (idempotent), growing it first when an extend waits. */
  async mount(id: string): Promise<void> {
    const dir = this.folder(id);
    if (this.isMounted(id)) return;
    if (existsSync(this.#growMark(id))) await this.#growOffline(id);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    await this.#tool('mount', ['-o', 'loop,nosuid,nodev', this.#image(id), dir]);
    // Its owner's alone until a machine is given it; machines reach it by its absolute path.
    chmodSync(dir, 0o700);
  }

  /**
   * Mounts the volume for a machine about to start on it: grown first when an extend waited for
   * the machine's restart (taken down and mounted again; nothing holds it between two runs).
   */
  async prepare(id: string): Promise<void> {
    if (existsSync(this.#growMark(id))) await this.unmount(id);
    await this.mount(id);
  }

  /** Unmounts the volume (idempotent); its loop device goes with it. */
  async unmount(id: string): Promise<void> {
    if (this.isMounted(id)) await this.#tool('umount', [this.folder(id)]);
  }

  /** Unmounts and deletes the volume's disk and folder (idempotent). */
  async remove(id: string): Promise<void> {
    await this.unmount(id);
    this.#delete(id);
  }

  /**
   * Removes a disk whose contents are done with (a machine's root): when a process that outlived
   * its machine still holds it, it is detached lazily (`umount -l`), gone from the tree at once
   * and freed when that process is — never an error that keeps the machine from starting again.
   */
  async discard(id: string): Promise<void> {
    await this.unmount(id).catch(() => this.#tool('umount', ['-l', this.folder(id)]));
    this.#delete(id);
  }

  #delete(id: string): void {
    for (const path of [this.#image(id), this.#growMark(id), this.folder(id)])
      rmSync(path, { recursive: true, force: true });
  }

  /**
   * Grows the disk to `sizeGb`. `held`: a running machine has it mounted, so it cannot be taken
   * down to grow. Answers whether the new size waits for the machine's restart.
   */
  async grow(id: string, sizeGb: number, held: boolean): Promise<{ needsRestart: boolean }> {
    const image = this.#image(id);
    const bytes = sizeGb * 1024 ** 3;
    if (statSync(image).size >= bytes) return { needsRestart: false };
    const fd = openSync(image, 'r+');
    try {
      ftruncateSync(fd, bytes); // sparse: the new space takes nothing on the worker until used
    } finally {
      closeSync(fd);
    }
    writeFileSync(this.#growMark(id), '', { mode: 0o600 });
    if (this.isMounted(id)) {
      const device = await this.#deviceOf(image);
      try {
        await this.#tool('losetup', ['--set-capacity', device]);
        await this.#tool('resize2fs', [device]);
        rmSync(this.#growMark(id), { force: true });
        return { needsRestart: false };
      } catch {
        // The kernel refused an online resize (a container without CAP_SYS_RESOURCE): offline.
        if (held) return { needsRestart: true };
      }
      await this.unmount(id);
    }
    await this.mount(id); // grows it on the way
    return { needsRestart: false };
  }

  /** The filesystem's blocks, as `statfs` counts them. */
  usage(id: string): DiskUsage {
    const stats = statfsSync(this.folder(id));
    return {
      blockSize: stats.bsize,
      blocks: stats.blocks,
      blocksFree: stats.bfree,
      blocksAvail: stats.bavail,
    };
  }

  /** Mounted volumes (ids) of this worker. */
  mounted(): string[] {
    return mountsUnder(this.dir)
      .filter(
        (path) => path.startsWith(`${this.dir}/`) && !path.slice(this.dir.length + 1).includes('/'),
      )
      .map((path) => path.slice(this.dir.length + 1));
  }

  async #make(id: string, bytes: number): Promise<void> {
    const image = this.#image(id);
    const fd = openSync(image, 'w', 0o600);
    try {
      ftruncateSync(fd, bytes);
    } finally {
      closeSync(fd);
    }
    // Lazy init: the tables and journal are not zeroed, so a new volume takes under a megabyte
    // of the worker's disk (mkfs would write the whole journal, 32 MiB for a 1 GB volume).
    await this.#tool('mkfs.ext4', [
      '-q',
      '-F',
      '-m',
      '0',
      '-E',
      'lazy_itable_init=1,lazy_journal_init=1,nodiscard',
      image,
    ]);
    await this.mount(id);
  }

  async #growOffline(id: string): Promise<void> {
    const image = this.#image(id);
    // resize2fs insists on a checked filesystem; -p repairs only what is safe to repair.
    await this.#tool('e2fsck', ['-f', '-p', image]).catch((error: { code?: number }) => {
      if ((error.code ?? 8) >= 4) throw error; // 1 and 2: errors corrected
    });
    await this.#tool('resize2fs', [image]);
    rmSync(this.#growMark(id), { force: true });
  }

  async #deviceOf(image: string): Promise<string> {
    const { stdout } = await run(this.paths.losetup, ['-n', '-O', 'NAME', '-j', image], {
      timeout: toolTimeoutMs,
    });
    const device = stdout.trim().split('\n')[0];
    if (!device) throw new Error(`no loop device holds ${image}`);
    return device;
  }

  /** Whether the disk `id` is mounted on its folder. */
  isMounted(id: string): boolean {
    const dir = this.folder(id);
    return mountsUnder(dir).includes(dir);
  }

  #image(id: string): string {
    return join(this.dir, `${id}.ext4`);
  }

  #growMark(id: string): string {
    return join(this.dir, `${id}.ext4.grow`);
  }

  async #tool(tool: Tool, args: string[]): Promise<void> {
    try {
      await run(this.paths[tool], args, { timeout: toolTimeoutMs });
    } catch (error) {
      const { stderr, code } = error as { stderr?: string; code?: number };
      throw Object.assign(
        new Error(`${tool} ${args.join(' ')}: ${stderr?.trim() || (error as Error).message}`),
        {
          code,
        },
      );
    }
  }
}

/** `dir`, made if missing, as an absolute path through links (as /proc/self/mountinfo names it). */
function folder(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return realpathSync(dir);
}
