import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { ServiceErrorCode } from './error-codes.js';

/** What a lock's holder records about itself beside the lock (`<lock>.holder.json`). */
export interface StateLockHolder {
  pid: number;
  /** The server (or launcher) holding it. */
  name: string;
  /** When it took the lock (ISO 8601). */
  since: string;
  /** Anything else the holder chose to say (a launcher records its URLs). */
  [key: string]: unknown;
}

/** A second process asked for a state lock that a live process holds. */
export class StateLockedError extends Error {
  readonly code = 'STATE_LOCKED' satisfies ServiceErrorCode;
  constructor(
    readonly path: string,
    readonly holder: StateLockHolder | undefined,
  ) {
    super(
      holder
        ? `${path} is held by ${holder.name} (pid ${holder.pid}, since ${holder.since}): is it still running?`
        : `${path} is held by another process`,
    );
    this.name = 'StateLockedError';
  }
}

export interface StateLock {
  readonly path: string;
  /** Replaces the extra facts recorded for others to read (e.g. URLs, once known). */
  describe(facts: Record<string, unknown>): void;
  /** Frees the lock (the process exiting frees it too, however it exits). */
  release(): void;
}

/**
 * Every lock this process holds. Garbage collection of a connection closes it, which would free
 * the lock while the server still runs: the locks live here until released.
 */
const held = new Map<Database.Database, string>();
let exitHookInstalled = false;

/** At exit the kernel frees the locks; their holder records are removed here, if it gets the chance. */
function removeRecordsAtExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const path of held.values()) {
      try {
        rmSync(holderPath(path), { force: true });
      } catch {
        // a record left behind names a process that is gone: readers check the lock, not it
      }
    }
  });
}

/** Bound on waiting for a holder that has the lock but has not yet written who it is. */
const holderRecordWaitMs = 500;

/**
 * Takes the exclusive lock at `path` for this process, before the caller touches any of the
 * state it guards; throws `StateLockedError` naming the holder when a live process has it.
 *
 * Why a kernel lock rather than an O_EXCL pid file: the kernel drops an fcntl lock the moment its
 * holder dies, by kill -9 too, so there is no stale lock to judge — no guessing from a pid that
 * may have been reused, and no race between two processes taking over the same stale file. Node
 * has no flock/fcntl binding; SQLite takes exactly such a lock, and better-sqlite3 (maintained,
 * already what corrosion and flyd store their state with) exposes it: an EXCLUSIVE transaction
 * that is never committed holds the file's write lock until the connection closes or the process
 * ends. Its journal is kept in memory so that nothing but the (empty) lock file is left behind.
 * SQLite also refuses a second connection of the same process, so one process cannot take it twice.
 */
export function lockState(
  path: string,
  name: string,
  facts: Record<string, unknown> = {},
): StateLock {
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { timeout: 0 });
  try {
    db.pragma('journal_mode = MEMORY');
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (error) {
    db.close();
    if ((error as { code?: string }).code === 'SQLITE_BUSY') {
      throw new StateLockedError(path, waitForHolderRecord(path));
    }
    throw error;
  }
  const since = new Date().toISOString();
  const record = (extra: Record<string, unknown>) =>
    writeHolder(path, { ...extra, pid: process.pid, name, since });
  record(facts);
  held.set(db, path);
  removeRecordsAtExit();
  return {
    path,
    describe: (more) => {
      if (held.has(db)) record(more);
    },
    release: () => {
      if (!held.delete(db)) return;
      rmSync(holderPath(path), { force: true });
      db.close();
    },
  };
}

/**
 * Who holds the lock at `path`, or undefined when it is free (or was never made). Does not create
 * the lock file; it takes the lock for an instant when it is free.
 */
export function stateLockHolder(path: string): StateLockHolder | undefined {
  let db: Database.Database;
  try {
    db = new Database(path, { timeout: 0, fileMustExist: true });
  } catch {
    return undefined; // no lock file: nobody ever held it here
  }
  try {
    db.pragma('journal_mode = MEMORY');
    db.exec('BEGIN EXCLUSIVE');
    db.exec('ROLLBACK');
    return undefined;
  } catch (error) {
    if ((error as { code?: string }).code !== 'SQLITE_BUSY') throw error;
    return waitForHolderRecord(path) ?? { pid: 0, name: 'another process', since: '' };
  } finally {
    db.close();
  }
}

const holderPath = (path: string) => `${path}.holder.json`;

function writeHolder(path: string, holder: StateLockHolder): void {
  // Written aside and renamed, so a reader never sees half a record.
  const temporary = `${holderPath(path)}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(holder)}\n`);
  renameSync(temporary, holderPath(path));
}

function readHolder(path: string): StateLockHolder | undefined {
  try {
    const holder = JSON.parse(readFileSync(holderPath(path), 'utf8')) as StateLockHolder;
    return typeof holder.pid === 'number' ? holder : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The holder's record. Only a holder writes it, once it has the lock, so a record naming a live
 * process is current; one naming a dead process was left by an earlier holder, and the live one
 * is about to replace it: wait for that, briefly.
 */
function waitForHolderRecord(path: string): StateLockHolder | undefined {
  const deadline = Date.now() + holderRecordWaitMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    const holder = readHolder(path);
    if (holder && isAlive(holder.pid)) return holder;
    if (Date.now() >= deadline) return undefined;
    Atomics.wait(pause, 0, 0, 10);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}
