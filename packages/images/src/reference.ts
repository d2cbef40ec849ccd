import { ImageError } from './errors.js';

/** `sha256:` and 64 lowercase hex digits: an image's identity (the sha256 of its archive). */
export const digestPattern = /^sha256:[0-9a-f]{64}$/;

const namePattern = /^[a-z0-9][a-z0-9._-]{0,127}$/;
const tagPattern = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** A parsed image reference: `name`, `name:tag` or `name@sha256:<hex>`. */
export interface ImageReference {
  name: string;
  /** Given as `name:tag`; absent for a bare name or a digest. */
  tag?: string;
  /** Given as `name@sha256:...`. */
  digest?: string;
}

export function isDigest(value: string): boolean {
  return digestPattern.test(value);
}

export function isImageName(value: string): boolean {
  return namePattern.test(value);
}

export function isImageTag(value: string): boolean {
  return tagPattern.test(value);
}

/** Parses `name`, `name:tag` or `name@sha256:<hex>`; anything else is IMAGE_ERR_BAD_REFERENCE. */
export function parseImageReference(reference: string): ImageReference {
  const refuse = () =>
    new ImageError(
      'IMAGE_ERR_BAD_REFERENCE',
      `${JSON.stringify(reference)} is not an image reference (name, name:tag or name@sha256:<64 hex>)`,
    );
  const at = reference.indexOf('@');
  if (at >= 0) {
    const name = reference.slice(0, at);
    const digest = reference.slice(at + 1);
    if (!isImageName(name) || !isDigest(digest)) throw refuse();
    return { name, digest };
  }
  const [name = '', tag, ...rest] = reference.split(':');
  if (!isImageName(name) || rest.length > 0 || (tag !== undefined && !isImageTag(tag))) {
    throw refuse();
  }
  return tag === undefined ? { name } : { name, tag };
}

/**
 * The parts of a reference as Fly's `image_ref` shows them: `name:tag` (tag `latest` when left
 * out) or `name@sha256:...` (no tag). Lenient: it describes what a machine runs, never refuses.
 */
export function imageRefParts(reference: string): {
  repository: string;
  tag: string;
  digest: string;
} {
  const [named = '', digest = ''] = reference.split('@');
  const [repository = '', tag = digest === '' ? 'latest' : ''] = named.split(':');
  return { repository, tag, digest };
}
