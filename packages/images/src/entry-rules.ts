import { posix } from 'node:path';
import { ImageError } from './errors.js';

/** An archive entry as the tar parser reads it (the fields the rules look at). */
export interface ArchiveEntry {
  path: string;
  type: string;
  size: number;
  linkpath?: string;
}

const fileTypes = new Set(['File', 'OldFile', 'ContiguousFile']);

const unsafe = (path: string, why: string) =>
  new ImageError('IMAGE_ERR_UNSAFE_ENTRY', `archive entry ${JSON.stringify(path)}: ${why}`);

/** The entry's path relative to the root, or a refusal when it is absolute or climbs out. */
function relativePath(path: string, what: string): string {
  if (path.includes('\0')) throw unsafe(path, `${what} holds a NUL byte`);
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) throw unsafe(path, `${what} is absolute`);
  const normal = posix.normalize(path).replace(/\/+$/, '');
  if (normal === '..' || normal.startsWith('../') || path.split('/').includes('..')) {
    throw unsafe(path, `${what} climbs out of the image root (..)`);
  }
  return normal;
}

/**
 * Checks entries one by one, in archive order: each stays inside the root, is a file, a folder
 * or a link that resolves inside the root, and never goes through a symbolic link an earlier
 * entry made (a link to `.` would otherwise turn a harmless `link/..` into the root's parent).
 */
export class EntryRules {
  readonly #symlinks = new Set<string>();

  check(entry: ArchiveEntry): string {
    const path = relativePath(entry.path, 'path');
    this.#notThroughLink(entry.path, path);
    if (fileTypes.has(entry.type) || entry.type === 'Directory') return path;
    if (entry.type === 'SymbolicLink') {
      const target = entry.linkpath ?? '';
      if (target.startsWith('/')) throw unsafe(entry.path, 'a symbolic link to an absolute path');
      const resolved = posix.normalize(posix.join(posix.dirname(path), target));
      if (resolved === '..' || resolved.startsWith('../')) {
        throw unsafe(entry.path, `a symbolic link out of the image root (${target})`);
      }
      this.#symlinks.add(path);
      return path;
    }
    if (entry.type === 'Link') {
      const target = relativePath(entry.linkpath ?? '', 'hard link target');
      this.#notThroughLink(entry.path, target);
      return path;
    }
    throw unsafe(entry.path, `a ${entry.type} entry (only files, folders and links are allowed)`);
  }

  #notThroughLink(shown: string, path: string): void {
    const parts = path.split('/');
    for (let depth = 1; depth < parts.length; depth++) {
      if (this.#symlinks.has(parts.slice(0, depth).join('/'))) {
        throw unsafe(shown, 'goes through a symbolic link of the archive');
      }
    }
  }
}
