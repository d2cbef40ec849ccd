export { ImageError, type ImageErrorCode, ImageErrors } from './errors.js';
export {
  type ArchiveSummary,
  defaultUnpackLimits,
  inspectArchive,
  type UnpackLimits,
} from './inspect.js';
export { type ImageManifest, manifestFile, parseManifest } from './manifest.js';
export { digestOf, type PackedImage, packImage } from './pack.js';
export {
  digestPattern,
  type ImageReference,
  imageRefParts,
  isDigest,
  isImageName,
  isImageTag,
  parseImageReference,
} from './reference.js';
export { unpackImage } from './unpack.js';
