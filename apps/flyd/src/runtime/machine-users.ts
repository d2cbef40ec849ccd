import { chmodSync, lchownSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { closedAbove, UsageError } from '@fleet/service';
import type { Database as Db } from 'better-sqlite3';
import { flydError } from '../errors.js';
import { findTool } from './find-tool.js';

/** The unprivileged user and group one machine's processes run as (both the same number). */
export interface MachineUser {
  uid: number;
  gid: number;
}

/** The default range of machine uids: above any distribution's users and the usual subuids. */
export const defaultMachineUids = { first: 300_000, last: 365_535 };

/**
 * Every machine of this worker runs as a user of its own, as Fly's run in VMs of their own: a
 * uid from `--machine-users`, kept for the machine's life on this worker (its own table, so a
 * uid is never two machines' at once) and given back when it is destroyed. A machine so cannot
 * signal flyd, corrosion, the proxy or another machine, nor read another's root, volume,
 * environment (`/proc/<pid>/environ`) or flyd's database. Processes take the user through
 * `setpriv`: after the cgroup shell has joined the machine's groups as root, with no
 * supplementary groups, and with `no_new_privs` (a setuid program gives no way back to root).
 */
export class MachineUsers {
  private constructor(
    private readonly db: Db,
    readonly first: number,
    readonly last: number,
    private readonly setpriv: string,
  ) {
    db.exec(
      'CREATE TABLE IF NOT EXISTS machine_users (machine_id TEXT PRIMARY KEY, uid INTEGER NOT NULL UNIQUE)',
    );
  }

  /**
   * Machine users as `setting` says: `off`, a range `FIRST-LAST`, or `auto` (the default range
   * when flyd can switch users here). A range asked for that cannot be had is a UsageError
   * naming what is missing; `auto` answers why not instead.
   */
  static configure(
    db: Db,
    setting: string,
    dataDir: string,
    /** Where machine roots lie when not in the data directory (`--roots-dir`). */
    rootsDir?: string,
  ): { users: MachineUsers } | { off: string } {
    if (setting === 'off') return { off: '--machine-users off' };
    const range = setting === 'auto' ? defaultMachineUids : parseRange(setting);
    const missing = missingPower(dataDir, rootsDir);
    if (missing === undefined) {
      return {
        users: new MachineUsers(db, range.first, range.last, findTool('setpriv') as string),
      };
    }
    if (setting === 'auto' && process.geteuid?.() !== 0) return { off: missing };
    // As root, machines without users of their own would run as root: never by default. One
    // chmod of a folder above the data directory must not hand every tenant the worker.
    throw new UsageError(
      `--machine-users ${setting}: ${missing}` +
        (setting === 'auto'
          ? ` — machines would run as root; fix that, or pass --machine-users off to accept it`
          : ''),
    );
  }

  /** The machine's user, allocated (the lowest free uid of the range) on its first launch here. */
  userOf(machineId: string): MachineUser {
    const uid = this.db.transaction(() => {
      const kept = this.db
        .prepare('SELECT uid FROM machine_users WHERE machine_id = ?')
        .pluck()
        .get(machineId) as number | undefined;
      if (kept !== undefined) return kept;
      const free = this.db
        .prepare(
          `SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM machine_users WHERE uid = :first) THEN :first
             ELSE (SELECT min(uid) + 1 FROM machine_users AS a WHERE uid >= :first AND NOT EXISTS
                    (SELECT 1 FROM machine_users AS b WHERE b.uid = a.uid + 1)) END`,
        )
        .pluck()
        .get({ first: this.first }) as number;
      if (free > this.last) {
        throw flydError(
          'FLYD_ERR_NO_CAPACITY',
          `every machine user of this worker (${this.first}-${this.last}) is taken`,
        );
      }
      this.db.prepare('INSERT INTO machine_users VALUES (?, ?)').run(machineId, free);
      return free;
    })();
    return { uid, gid: uid };
  }

  /** The machine's user, if it was given one here (a process adopted, an exec). */
  existing(machineId: string): MachineUser | undefined {
    const uid = this.db
      .prepare('SELECT uid FROM machine_users WHERE machine_id = ?')
      .pluck()
      .get(machineId) as number | undefined;
    return uid === undefined ? undefined : { uid, gid: uid };
  }

  /** Gives a destroyed (or migrated away) machine's uid back. */
  release(machineId: string): void {
    this.db.prepare('DELETE FROM machine_users WHERE machine_id = ?').run(machineId);
  }

  /** `command` run as `user`, with no supplementary groups and no way to gain privileges. */
  command(user: MachineUser, command: string[]): string[] {
    return [
      this.setpriv,
      `--reuid=${user.uid}`,
      `--regid=${user.gid}`,
      '--clear-groups',
      '--no-new-privs',
      '--',
      ...command,
    ];
  }
}

/** The folders of the data directory machines pass through to their own root and volume. */
const passedThrough = new Set(['roots', 'volumes']);

/**
 * Closes the data directory to machines but for the way to their own files: it and `roots/` (or
 * `rootsDir` elsewhere) and `volumes/` may be passed through, not listed (each machine's folder
 * inside is its own, 0700); everything else in it (flyd.db, `machines/` with the output files and
 * configs, `images/`, `snapshots/`) is flyd's alone. SQLite gives the database's WAL files its mode.
 */
export function shieldDataDir(dataDir: string, rootsDir: string): void {
  chmodSync(rootsDir, 0o711);
  chmodSync(dataDir, 0o711);
  for (const name of readdirSync(dataDir)) {
    const path = join(dataDir, name);
    const entry = lstatSync(path);
    if (entry.isSymbolicLink()) continue;
    chmodSync(path, passedThrough.has(name) ? 0o711 : entry.mode & 0o700);
  }
}

/**
 * Hands `dir` and everything in it to `user`, mode 0700 at its top: other machines cannot enter.
 * Links are changed, never followed (what a machine left in its volume may point anywhere).
 * Walks the tree only when its top is someone else's: a volume already the machine's is not
 * walked again at every launch.
 */
export function giveTo(dir: string, user: MachineUser): void {
  const top = lstatSync(dir);
  if (top.uid !== user.uid || top.gid !== user.gid) chownTree(dir, user);
  chmodSync(dir, 0o700);
}

function chownTree(path: string, user: MachineUser): void {
  lchownSync(path, user.uid, user.gid);
  const entry = lstatSync(path);
  if (!entry.isDirectory()) return;
  for (const name of readdirSync(path)) chownTree(join(path, name), user);
}

/** `FIRST-LAST`, each an unprivileged uid, as a range. */
function parseRange(text: string): { first: number; last: number } {
  const match = /^(\d+)-(\d+)$/.exec(text);
  const first = Number(match?.[1]);
  const last = Number(match?.[2]);
  if (!match || first < 1_000 || last < first || last > 4_294_967_294) {
    throw new UsageError(
      `--machine-users must be auto, off or a uid range like ${defaultMachineUids.first}-${defaultMachineUids.last} (from 1000 up, first <= last), not ${JSON.stringify(text)}`,
    );
  }
  return { first, last };
}

/** Why flyd cannot run machines as other users here, or undefined when it can. */
function missingPower(dataDir: string, rootsDir: string | undefined): string | undefined {
  if (process.geteuid?.() !== 0)
    return 'flyd is not root, so it cannot run machines as other users';
  if (findTool('setpriv') === undefined) return 'setpriv (util-linux) is not installed';
  // A machine reaches its root and volume by absolute paths (HOME, FLEET_VOLUME_DIR, the mount's
  // link): every folder above the data directory and the roots must let other users through.
  for (const dir of rootsDir === undefined ? [dataDir] : [dataDir, rootsDir]) {
    const closed = closedAbove(dir);
    if (closed !== undefined)
      return `${closed} does not let other users through (chmod o+x), so machines could not reach ${dir}`;
  }
  return undefined;
}
