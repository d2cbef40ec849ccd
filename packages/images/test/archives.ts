import { gzipSync } from 'node:zlib';
import { Header } from 'tar';

/** One entry of a hand-made archive: what a hostile or broken client could send. */
export interface CraftedEntry {
  path: string;
  type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'CharacterDevice' | 'FIFO';
  linkpath?: string;
  body?: string;
}

/** A .tar.gz of exactly these entries, headers written by tar's own Header (no path checks). */
export function craftArchive(entries: CraftedEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const body = Buffer.from(entry.body ?? '');
    const header = new Header({
      path: entry.path,
      type: entry.type ?? 'File',
      linkpath: entry.linkpath,
      size: body.length,
      mode: 0o644,
      mtime: new Date(0),
    });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

export const manifestEntry: CraftedEntry = {
  path: 'image.json',
  body: JSON.stringify({ cmd: ['node', 'server.mjs'] }),
};
