import { createHash, randomUUID } from 'node:crypto';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type ArchiveSummary, ImageError, inspectArchive, type UnpackLimits } from '@fleet/images';
import { privateDir } from '@fleet/service';
import { flapsError } from './errors.js';

/** An upload's temporary file untouched this long was cut off (a crash): removed at start. */
const staleUploadMs = 24 * 60 * 60 * 1000;

export interface ImageBlobsOptions {
  /** `--images-dir`: archives as `sha256/<hex>.tar.gz`, uploads in progress under `tmp/`. */
  dir: string;
  /** `--image-bytes-max`: the largest archive taken. */
  archiveBytesMax: number;
  /** What an archive may unpack to (checked at upload, so a worker never pulls a bad one). */
  unpackLimits: UnpackLimits;
}

export interface ReceivedImage extends ArchiveSummary {
  digest: string;
  sizeBytes: number;
  /** False when this digest was stored already (the upload was a repeat). */
  stored: boolean;
}

/** The image archives this flaps keeps on disk, each named by its digest. */
export class ImageBlobs {
  constructor(private readonly options: ImageBlobsOptions) {
    // Every app's images: flaps' alone (machines run as other users on a worker, see flyd).
    privateDir(options.dir);
    mkdirSync(join(options.dir, 'tmp'), { recursive: true });
    // Uploads cut off by a crash leave files in tmp/. Only old ones go: another flaps sharing
    // this folder may be receiving one now (an upload lasts at most its request's timeout).
    const staleBefore = Date.now() - staleUploadMs;
    for (const name of readdirSync(join(options.dir, 'tmp'))) {
      const path = join(options.dir, 'tmp', name);
      if (statSync(path).mtimeMs < staleBefore) rmSync(path, { force: true });
    }
    mkdirSync(join(options.dir, 'sha256'), { recursive: true });
  }

  get archiveBytesMax(): number {
    return this.options.archiveBytesMax;
  }

  path(digest: string): string {
    return join(this.options.dir, 'sha256', `${digest.slice('sha256:'.length)}.tar.gz`);
  }

  has(digest: string): boolean {
    return existsSync(this.path(digest));
  }

  /**
   * Streams an upload to a temporary file, hashing it on the way and cutting it off past
   * `archiveBytesMax`; checks the digest the client gave (if any) and the archive's content
   * (entries, limits, image.json), then keeps it under its digest. A repeat keeps the first copy.
   */
  async receive(body: Readable, expectedDigest: string | undefined): Promise<ReceivedImage> {
    const temporary = join(this.options.dir, 'tmp', randomUUID());
    const hash = createHash('sha256');
    let sizeBytes = 0;
    const { archiveBytesMax } = this.options;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        sizeBytes += chunk.length;
        if (sizeBytes > archiveBytesMax) {
          callback(tooLarge(archiveBytesMax));
          return;
        }
        hash.update(chunk);
        callback(null, chunk);
      },
    });
    try {
      await pipeline(body, counter, createWriteStream(temporary));
      const digest = `sha256:${hash.digest('hex')}`;
      if (expectedDigest !== undefined && expectedDigest !== digest) {
        throw flapsError(
          'FLAPS_ERR_IMAGE_DIGEST',
          `the archive's digest is ${digest}, not the ${expectedDigest} given`,
        );
      }
      const summary = await this.#inspect(temporary);
      const stored = !this.has(digest);
      if (stored) renameSync(temporary, this.path(digest));
      return { ...summary, digest, sizeBytes, stored };
    } finally {
      rmSync(temporary, { force: true });
    }
  }

  async #inspect(file: string): Promise<ArchiveSummary> {
    try {
      return await inspectArchive(file, this.options.unpackLimits);
    } catch (error) {
      if (!(error instanceof ImageError)) throw error;
      throw flapsError(
        error.code === 'IMAGE_ERR_TOO_LARGE' ? 'FLAPS_ERR_IMAGE_TOO_LARGE' : 'FLAPS_ERR_BAD_IMAGE',
        `${error.code}: ${error.message}`,
      );
    }
  }
}

export function tooLarge(archiveBytesMax: number) {
  return flapsError(
    'FLAPS_ERR_IMAGE_TOO_LARGE',
    `the archive is over ${archiveBytesMax} bytes (--image-bytes-max)`,
  );
}
