import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { create } from 'tar';
import { ImageError } from './errors.js';
import { type ImageManifest, manifestBytesMax, manifestFile, parseManifest } from './manifest.js';

/** Every entry's modification time: the epoch, so that packing never depends on when. */
const fixedMtime = new Date(0);
/** Bound on what a folder may hold (entries); the unpack side has its own bounds too. */
const folderEntriesMax = 100_000;

export interface PackedImage {
  /** The gzip-compressed tar. */
  archive: Buffer;
  /** `sha256:<hex>` of `archive`: the image's identity. */
  digest: string;
  manifest: ImageManifest;
}

export function digestOf(archive: Buffer): string {
  return `sha256:${createHash('sha256').update(archive).digest('hex')}`;
}

/** The folder's files and folders (relative, `/`-separated), sorted; anything else is refused. */
function listFolder(root: string): string[] {
  const found: string[] = [];
  const walk = (relative: string) => {
    const names = readdirSync(join(root, relative)).sort();
    for (const name of names) {
      const path = relative === '' ? name : `${relative}/${name}`;
      const stat = lstatSync(join(root, path));
      if (stat.isDirectory()) {
        found.push(`${path}/`);
        walk(path);
      } else if (stat.isFile()) {
        found.push(path);
      } else {
        throw new ImageError(
          'IMAGE_ERR_BAD_FOLDER',
          `${path} is neither a file nor a folder (links and special files are not packed)`,
        );
      }
      if (found.length > folderEntriesMax) {
        throw new ImageError('IMAGE_ERR_BAD_FOLDER', `more than ${folderEntriesMax} entries`);
      }
    }
  };
  walk('');
  return found;
}

/**
 * Permissions as `rwxr-xr-x` or `rw-r--r--` whatever the checkout's umask made; the file type
 * bits above them stay (tar reads the entry's type from them).
 */
function fixMode(stat: Stats): void {
  const permissions = stat.isDirectory() || stat.mode & 0o111 ? 0o755 : 0o644;
  stat.mode = (stat.mode & ~0o7777) | permissions;
}

/**
 * Packs `folder` (which holds image.json) as a deterministic .tar.gz: entries sorted, every
 * mtime the epoch, no owners, modes 0644/0755, gzip without a name or time. The same files give
 * the same bytes on any machine, so the digest names the content.
 */
export async function packImage(folder: string): Promise<PackedImage> {
  let entries: string[];
  try {
    entries = listFolder(folder);
  } catch (error) {
    if (error instanceof ImageError) throw error;
    throw new ImageError(
      'IMAGE_ERR_BAD_FOLDER',
      `cannot read ${folder}: ${(error as Error).message}`,
    );
  }
  if (!entries.includes(manifestFile)) {
    throw new ImageError('IMAGE_ERR_BAD_FOLDER', `${folder} has no ${manifestFile}`);
  }
  const manifestText = readFileSync(join(folder, manifestFile));
  if (manifestText.length > manifestBytesMax) {
    throw new ImageError(
      'IMAGE_ERR_BAD_MANIFEST',
      `${manifestFile} is over ${manifestBytesMax} bytes`,
    );
  }
  const manifest = parseManifest(manifestText.toString('utf8'));
  const stream = create(
    {
      cwd: folder,
      gzip: true,
      portable: true,
      mtime: fixedMtime,
      noDirRecurse: true,
      filter: (_path, stat) => {
        fixMode(stat as Stats);
        return true;
      },
    },
    entries,
  );
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  const archive = Buffer.concat(chunks);
  return { archive, digest: digestOf(archive), manifest };
}
