import { createHash, randomUUID } from 'node:crypto';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ImageError, type UnpackLimits, unpackImage } from '@fleet/images';
import type { Logger } from '@fleet/service';
import { request } from 'undici';
import { flydError } from '../errors.js';
import { imageMetrics } from '../metrics.js';

export interface ImageCacheOptions {
  /** `<data-dir>/images`: one folder per image (`<hex>/`), each with its `.cached` record. */
  dir: string;
  /** `--flaps-url`: where images are pulled from; without it only local images run. */
  flapsUrl: string | undefined;
  /** The internal token, presented to flaps' download route. */
  token: string;
  /** `--image-cache-bytes-max`: the bound on the unpacked images kept. */
  bytesMax: number;
  /** Bound on one download (`--image-pull-timeout-ms`). */
  pullTimeoutMs: number;
  /** What one image may unpack to (its archive is bounded by the same number). */
  unpackLimits: UnpackLimits;
  /** The digests machines on this worker use: never evicted. */
  inUse: () => Set<string>;
  logger: Logger;
}

interface CachedImage {
  sizeBytes: number;
  lastUsedMs: number;
}

/** The record beside an unpacked image; its mtime is the image's last use (kept over restarts). */
const recordFile = '.cached';
const hexOf = (digest: string) => digest.slice('sha256:'.length);

/** The size a `.cached` record gives, or undefined when it is not a record flyd wrote. */
function recordedSize(file: string): number | undefined {
  try {
    const { sizeBytes } = JSON.parse(readFileSync(file, 'utf8')) as { sizeBytes?: unknown };
    return Number.isSafeInteger(sizeBytes) && (sizeBytes as number) >= 0
      ? (sizeBytes as number)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Images pulled from flaps by digest, verified, unpacked and kept for the next machine that
 * needs them. The cache is bounded in bytes: past the bound the least recently used image that
 * no machine here uses (and no create in flight holds) is removed.
 */
export class ImageCache {
  readonly #images = new Map<string, CachedImage>();
  readonly #pulling = new Map<string, Promise<void>>();
  /** Digests a create or update holds between its pull and the machine's record. */
  readonly #held = new Map<string, number>();

  constructor(private readonly options: ImageCacheOptions) {
    mkdirSync(options.dir, { recursive: true });
    for (const name of readdirSync(options.dir)) {
      const path = join(options.dir, name);
      const record = join(path, recordFile);
      if (!/^[0-9a-f]{64}$/.test(name) || !existsSync(record)) {
        rmSync(path, { recursive: true, force: true }); // a pull cut off by a crash
        continue;
      }
      const sizeBytes = recordedSize(record);
      if (sizeBytes === undefined) {
        rmSync(path, { recursive: true, force: true }); // a record cut short: pulled again if needed
        continue;
      }
      this.#images.set(`sha256:${name}`, { sizeBytes, lastUsedMs: statSync(record).mtimeMs });
    }
  }

  /** The unpacked folder of a cached image (marking it used), or undefined when not pulled. */
  dirOf(digest: string): string | undefined {
    const image = this.#images.get(digest);
    if (!image) return undefined;
    image.lastUsedMs = Date.now();
    const path = join(this.options.dir, hexOf(digest));
    utimesSync(join(path, recordFile), new Date(), new Date(image.lastUsedMs));
    return path;
  }

  /** Bytes the cached images take (unpacked). */
  get sizeBytes(): number {
    let total = 0;
    for (const image of this.#images.values()) total += image.sizeBytes;
    return total;
  }

  cached(): string[] {
    return [...this.#images.keys()];
  }

  /**
   * Makes sure the image is here, pulling it the first time, and holds it against eviction until
   * the returned release is called (a create holds it until its machine is recorded).
   */
  async hold(digest: string): Promise<() => void> {
    this.#held.set(digest, (this.#held.get(digest) ?? 0) + 1);
    const release = () => {
      const count = (this.#held.get(digest) ?? 1) - 1;
      if (count === 0) this.#held.delete(digest);
      else this.#held.set(digest, count);
    };
    try {
      if (!this.#images.has(digest)) {
        let pulling = this.#pulling.get(digest);
        if (!pulling) {
          pulling = this.#pull(digest).finally(() => this.#pulling.delete(digest));
          this.#pulling.set(digest, pulling);
        }
        await pulling;
      }
      this.dirOf(digest);
      return release;
    } catch (error) {
      release();
      throw error;
    }
  }

  async #pull(digest: string): Promise<void> {
    const { flapsUrl, dir, logger } = this.options;
    if (flapsUrl === undefined) {
      throw flydError(
        'FLYD_ERR_BAD_CONFIG',
        `config.image: ${digest} is not on this worker, which has no --flaps-url to pull it from`,
      );
    }
    const attempt = randomUUID();
    const archive = join(dir, `pull-${attempt}.tar.gz`);
    const unpacked = join(dir, `pull-${attempt}`);
    try {
      await this.#download(digest, archive);
      const summary = await unpackImage(archive, unpacked, this.options.unpackLimits).catch(
        (error: unknown) => {
          if (!(error instanceof ImageError)) throw error;
          throw flydError(
            'FLYD_ERR_IMAGE_PULL',
            `image ${digest}: ${error.code}: ${error.message}`,
          );
        },
      );
      const sizeBytes = summary.unpackedBytes;
      writeFileSync(join(unpacked, recordFile), JSON.stringify({ digest, sizeBytes }));
      renameSync(unpacked, join(dir, hexOf(digest)));
      this.#images.set(digest, { sizeBytes, lastUsedMs: Date.now() });
      imageMetrics().pulls.add(1);
      logger.info({ digest, sizeBytes }, 'image pulled');
      this.#evict(digest);
    } finally {
      rmSync(archive, { force: true });
      rmSync(unpacked, { recursive: true, force: true });
    }
  }

  /** Streams the archive to `file`, hashing it; refuses other bytes than the digest names. */
  async #download(digest: string, file: string): Promise<void> {
    const { flapsUrl, token, pullTimeoutMs, unpackLimits } = this.options;
    const failed = (why: string) =>
      flydError('FLYD_ERR_IMAGE_PULL', `pulling ${digest} from flaps: ${why}`);
    let response: Awaited<ReturnType<typeof request>>;
    try {
      response = await request(`${flapsUrl}/internal/images/${digest}`, {
        headers: { authorization: `Bearer ${token}` },
        headersTimeout: pullTimeoutMs,
        bodyTimeout: pullTimeoutMs,
        signal: AbortSignal.timeout(pullTimeoutMs),
      });
    } catch (error) {
      throw failed((error as Error).message);
    }
    if (response.statusCode === 404) {
      await response.body.dump();
      throw flydError('FLYD_ERR_BAD_CONFIG', `config.image: flaps has no image ${digest}`);
    }
    if (response.statusCode !== 200) {
      const text = (await response.body.text()).slice(0, 500);
      throw failed(`flaps answered ${response.statusCode} ${text}`);
    }
    const hash = createHash('sha256');
    let sizeBytes = 0;
    const verify = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        sizeBytes += chunk.length;
        if (sizeBytes > unpackLimits.unpackedBytesMax) {
          callback(failed(`the archive is over ${unpackLimits.unpackedBytesMax} bytes`));
          return;
        }
        hash.update(chunk);
        callback(null, chunk);
      },
    });
    try {
      await pipeline(response.body, verify, createWriteStream(file));
    } catch (error) {
      throw (error as { code?: string }).code === 'FLYD_ERR_IMAGE_PULL'
        ? error
        : failed((error as Error).message);
    }
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== digest) throw failed(`the bytes received are ${got}`);
  }

  /** Removes least recently used images, never `keep`, one in use or one held, until under the bound. */
  #evict(keep: string): void {
    const { bytesMax, dir, logger } = this.options;
    let total = this.sizeBytes;
    if (total <= bytesMax) return;
    const used = this.options.inUse();
    const candidates = [...this.#images.entries()]
      .filter(([digest]) => digest !== keep && !used.has(digest) && !this.#held.has(digest))
      .sort(([, a], [, b]) => a.lastUsedMs - b.lastUsedMs);
    for (const [digest, image] of candidates) {
      if (total <= bytesMax) break;
      rmSync(join(dir, hexOf(digest)), { recursive: true, force: true });
      this.#images.delete(digest);
      total -= image.sizeBytes;
      imageMetrics().evictions.add(1);
      logger.info({ digest, sizeBytes: image.sizeBytes }, 'image evicted');
    }
    if (total > bytesMax) {
      logger.warn({ sizeBytes: total, bytesMax }, 'image cache over its bound: the rest is in use');
    }
  }
}
