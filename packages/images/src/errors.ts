/** Error codes of the image format; the README lists the same table. */
export const ImageErrors = {
  IMAGE_ERR_BAD_FOLDER:
    'the folder to pack is missing, holds something other than files and folders, or has no valid image.json',
  IMAGE_ERR_BAD_MANIFEST:
    "the image's image.json is missing, not JSON, or breaks its shape (the message names the field)",
  IMAGE_ERR_BAD_ARCHIVE: 'the archive is not a gzip-compressed tar (or is truncated)',
  IMAGE_ERR_UNSAFE_ENTRY:
    'an archive entry leaves the root (absolute path, `..`, a link out or through a link) or is a device, FIFO or other special file',
  IMAGE_ERR_TOO_LARGE: 'the archive unpacks to more bytes or entries than allowed',
  IMAGE_ERR_BAD_REFERENCE: 'an image reference is not `name`, `name:tag` or `name@sha256:<64 hex>`',
} as const;

export type ImageErrorCode = keyof typeof ImageErrors;

/** A refused image, archive or reference; `code` is stable (see the README). */
export class ImageError extends Error {
  constructor(
    readonly code: ImageErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ImageError';
  }
}
