import { fileURLToPath } from 'node:url';

/** The folder of the sample images: `<dir>/<name>/image.json` beside the image's files. */
export const sampleImagesDir = fileURLToPath(new URL('../images', import.meta.url));
