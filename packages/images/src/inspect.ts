import { createReadStream } from 'node:fs';
import { Parser, type ReadEntry } from 'tar';
import { EntryRules } from './entry-rules.js';
import { ImageError } from './errors.js';
import { type ImageManifest, manifestBytesMax, manifestFile, parseManifest } from './manifest.js';

/** Bounds on what an archive may unpack to. */
export interface UnpackLimits {
  /** Sum of the entries' sizes. */
  unpackedBytesMax: number;
  /** Number of entries (files, folders, links). */
  entriesMax: number;
}

export const defaultUnpackLimits: UnpackLimits = {
  unpackedBytesMax: 1024 * 1024 * 1024,
  entriesMax: 100_000,
};

export interface ArchiveSummary {
  manifest: ImageManifest;
  unpackedBytes: number;
  entries: number;
}

/**
 * Reads an image archive through once without writing anything: every entry must pass the
 * entry rules and the limits, and image.json must be there and valid. The read stops at the
 * first problem (a gzip bomb is not inflated to its end).
 */
export function inspectArchive(
  file: string,
  limits: UnpackLimits = defaultUnpackLimits,
): Promise<ArchiveSummary> {
  return new Promise((resolve, reject) => {
    const rules = new EntryRules();
    const input = createReadStream(file);
    let problem: Error | undefined;
    let unpackedBytes = 0;
    let entries = 0;
    let manifestText: Buffer | undefined;
    const fail = (error: Error) => {
      problem ??= error;
      input.unpipe();
      input.destroy();
      reject(problem);
    };
    const onEntry = (entry: ReadEntry) => {
      if (problem) return entry.resume();
      try {
        const path = rules.check(entry);
        entries += 1;
        unpackedBytes += entry.size;
        if (entries > limits.entriesMax) {
          throw new ImageError('IMAGE_ERR_TOO_LARGE', `more than ${limits.entriesMax} entries`);
        }
        if (unpackedBytes > limits.unpackedBytesMax) {
          throw new ImageError(
            'IMAGE_ERR_TOO_LARGE',
            `unpacks to more than ${limits.unpackedBytesMax} bytes`,
          );
        }
        if (path === manifestFile && entry.type === 'File') {
          if (entry.size > manifestBytesMax) {
            throw new ImageError(
              'IMAGE_ERR_BAD_MANIFEST',
              `${manifestFile} is over ${manifestBytesMax} bytes`,
            );
          }
          const chunks: Buffer[] = [];
          entry.on('data', (chunk: Buffer) => chunks.push(chunk));
          entry.on('end', () => {
            manifestText = Buffer.concat(chunks);
          });
          return;
        }
      } catch (error) {
        fail(error as Error);
      }
      entry.resume();
    };
    const parser = new Parser({ strict: true, onReadEntry: onEntry });
    parser.on('error', (error: Error) =>
      fail(new ImageError('IMAGE_ERR_BAD_ARCHIVE', `not a readable .tar.gz: ${error.message}`)),
    );
    parser.on('end', () => {
      if (problem) return;
      if (manifestText === undefined) {
        return fail(new ImageError('IMAGE_ERR_BAD_MANIFEST', `the archive has no ${manifestFile}`));
      }
      try {
        resolve({ manifest: parseManifest(manifestText.toString('utf8')), unpackedBytes, entries });
      } catch (error) {
        fail(error as Error);
      }
    });
    input.on('error', (error) => fail(error));
    input.pipe(parser);
  });
}
