import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

/** Folder volumes (no disk) report blocks of this size; a disk reports its filesystem's. */
export const blockSizeBytes = 4096;
/** Bound on the entries a usage walk visits, so a volume of millions of files cannot stall flyd. */
const walkEntriesMax = 200_000;

export interface DirectoryUsage {
  bytes: number;
  /** Blocks the files take, each file rounded up to whole blocks. */
  blocks: number;
}

/** What the files under `dir` take (symlinks count as their own size, never followed). */
export function directoryUsage(dir: string): DirectoryUsage {
  const usage = { bytes: 0, blocks: 0 };
  const pending = [dir];
  let visited = 0;
  for (
    let current = pending.pop();
    current !== undefined && visited < walkEntriesMax;
    current = pending.pop()
  ) {
    let entries: string[];
    try {
      entries = readdirSync(current);
    } catch {
      continue; // gone meanwhile, or not a directory
    }
    for (const name of entries) {
      visited++;
      const path = join(current, name);
      const stat = lstatSync(path, { throwIfNoEntry: false });
      if (!stat) continue;
      if (stat.isDirectory()) pending.push(path);
      usage.bytes += stat.size;
      usage.blocks += Math.ceil(stat.size / blockSizeBytes);
    }
  }
  return usage;
}

/**
 * Copies a directory to `to` so that `to` is either absent or complete: the copy goes to a
 * sibling first and is renamed into place (a copy interrupted by a crash is started over). The
 * copy is its owner's alone (0700), as every volume and snapshot is until a machine is given it.
 */
export async function copyDirectory(from: string, to: string): Promise<void> {
  const partial = `${to}.partial`;
  rmSync(partial, { recursive: true, force: true });
  // Asynchronous: a large volume's copy must not stall flyd's event loop.
  await cp(from, partial, { recursive: true, verbatimSymlinks: true });
  chmodSync(partial, 0o700);
  rmSync(to, { recursive: true, force: true });
  renameSync(partial, to);
}

/** Copies a directory's contents into the directory `to` (a volume disk being made). */
export async function copyInto(from: string, to: string): Promise<void> {
  await cp(from, to, { recursive: true, verbatimSymlinks: true });
}

/** A digest of a directory's paths and contents (sha256), as a snapshot's `digest`. */
export function directoryDigest(dir: string): string {
  const hash = createHash('sha256');
  const buffer = Buffer.alloc(64 * 1024); // files are read in chunks: memory stays bounded
  const walk = (current: string, prefix: string) => {
    for (const name of readdirSync(current).sort()) {
      const path = join(current, name);
      const stat = lstatSync(path);
      hash.update(`${prefix}${name}\0`);
      if (stat.isDirectory()) walk(path, `${prefix}${name}/`);
      else if (stat.isFile()) hashFile(hash, path, buffer);
    }
  };
  walk(dir, '');
  return `sha256:${hash.digest('hex')}`;
}

function hashFile(hash: ReturnType<typeof createHash>, path: string, buffer: Buffer): void {
  const fd = openSync(path, 'r');
  try {
    for (let read = readSync(fd, buffer); read > 0; read = readSync(fd, buffer)) {
      hash.update(buffer.subarray(0, read));
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The directory as a tar stream (the system's `tar`: no dependency for an archive format), for
 * moving a volume to another worker. `done` settles when tar exited.
 */
export function tarDirectory(dir: string): { stream: Readable; done: Promise<void> } {
  const child = spawn('tar', ['-C', dir, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
  return { stream: child.stdout, done: exited(child, 'tar -c') };
}

/** Unpacks a tar stream into `to`, atomically as `copyDirectory` does. */
export async function untarDirectory(input: Readable, to: string): Promise<void> {
  const partial = `${to}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  await untarInto(input, partial);
  rmSync(to, { recursive: true, force: true });
  renameSync(partial, to);
}

/** Unpacks a tar stream into the directory `dir`, left its owner's alone (0700). */
export async function untarInto(input: Readable, dir: string): Promise<void> {
  const child = spawn('tar', ['-C', dir, '-xf', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
  // A tar that exits early (a bad archive) closes its stdin: the error is tar's exit, not this.
  child.stdin.on('error', () => undefined);
  input.pipe(child.stdin);
  input.once('error', () => child.kill('SIGKILL'));
  await exited(child, 'tar -x');
  chmodSync(dir, 0o700); // the archive's own mode for `.` does not decide who may enter
}

function exited(child: ReturnType<typeof spawn>, what: string): Promise<void> {
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    if (stderr.length < 4_000) stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${what} exited ${code}: ${stderr.trim()}`)),
    );
  });
}
