import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageError, parseImageReference, parseManifest } from '@fleet/images';
import { flydError } from '../errors.js';
import type { MachineConfig } from '../machines/machine-store.js';
import type { ImageCache } from './cache.js';

export interface ResolvedImage {
  /** `name:tag` as given (tag `latest` when left out), or `name@sha256:...`. */
  ref: string;
  /** The folder the machine runs in (the image's files). */
  dir: string;
  cmd: string[];
  /** The image's environment (image.json `env`); the config's `env` overrides it. */
  env: Record<string, string>;
}

/** Where images come from: the local folder (bare names, `name:tag`) and the pulled cache (digests). */
export interface ImageSources {
  /** The local image store (`--images-dir`), if this worker has one. */
  imagesDir: string | undefined;
  imageCache: ImageCache;
}

/** The digest a config's image names (`name@sha256:...`), or undefined for a local image. */
export function imageDigest(config: MachineConfig): string | undefined {
  if (typeof config.image !== 'string' || !config.image.includes('@')) return undefined;
  try {
    return parseImageReference(config.image).digest;
  } catch {
    return undefined; // resolveImage names the problem
  }
}

/** The command and environment image.json gives (the local store's files are not checked further). */
function readLocalManifest(file: string): { cmd: unknown; env: Record<string, string> } {
  const image = JSON.parse(readFileSync(file, 'utf8')) as { cmd?: unknown; env?: unknown };
  const env = typeof image.env === 'object' && image.env !== null ? image.env : {};
  return { cmd: image.cmd, env: env as Record<string, string> };
}

/** The image's folder and manifest: a pulled image by digest, else `<imagesDir>/<name>`. */
function locate(
  sources: ImageSources,
  image: string,
): Omit<ResolvedImage, 'cmd'> & { cmd: unknown } {
  const bad = (message: string) => flydError('FLYD_ERR_BAD_CONFIG', message);
  if (image.includes('@')) {
    let digest: string | undefined;
    try {
      digest = parseImageReference(image).digest;
    } catch (error) {
      if (error instanceof ImageError) throw bad(`config.image: ${error.message}`);
      throw error;
    }
    const dir = digest && sources.imageCache.dirOf(digest);
    if (!dir) throw bad(`config.image: ${image} is not pulled to this worker`);
    const manifest = parseManifest(readFileSync(join(dir, 'image.json'), 'utf8'));
    return { ref: image, dir, cmd: manifest.cmd, env: manifest.env };
  }
  const [name, tag = 'latest'] = image.split(':');
  if (!name || !/^[a-z0-9][a-z0-9._-]*$/.test(name)) {
    throw bad(`config.image ${JSON.stringify(image)} is not an image name`);
  }
  if (sources.imagesDir === undefined)
    throw bad(
      `config.image: unknown image ${name} (this worker keeps no local images: name it by digest, name@sha256:...)`,
    );
  const dir = join(sources.imagesDir, name);
  const manifest = join(dir, 'image.json');
  if (!existsSync(manifest)) throw bad(`config.image: unknown image ${name}`);
  return { ref: `${name}:${tag}`, dir, ...readLocalManifest(manifest) };
}

/**
 * Finds a config's image: `name@sha256:...` in the cache of pulled images (the caller pulled it:
 * ImageCache.hold), a bare `name` or `name:tag` in the local store, `<imagesDir>/<name>/image.json`
 * giving the command and the folder its files. `init.exec` (or `init.entrypoint` + `init.cmd`)
 * in the config overrides the command.
 */
export function resolveImage(sources: ImageSources, config: MachineConfig): ResolvedImage {
  if (typeof config.image !== 'string' || config.image === '') {
    throw flydError('FLYD_ERR_BAD_CONFIG', 'config.image is required');
  }
  const found = locate(sources, config.image);
  const override =
    config.init?.exec ??
    (config.init?.cmd ? [...(config.init.entrypoint ?? []), ...config.init.cmd] : undefined);
  const cmd = override ?? found.cmd;
  if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every((part) => typeof part === 'string')) {
    throw flydError(
      'FLYD_ERR_BAD_CONFIG',
      `config.init.exec: image ${config.image} has no command to run, and the config gives none`,
    );
  }
  return { ...found, cmd: cmd as string[] };
}
