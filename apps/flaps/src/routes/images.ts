import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { ImageError, isDigest, parseImageReference } from '@fleet/images';
import { authorizationMatches } from '@fleet/service';
import type { FastifyInstance } from 'fastify';
import { flapsError } from '../errors.js';
import { type ImageBlobs, tooLarge } from '../image-blobs.js';
import type { ImageRows } from '../image-rows.js';

export interface ImageService {
  rows: ImageRows;
  /** Absent when flaps runs without `--images-dir`: tags still resolve, nothing is stored. */
  blobs: ImageBlobs | undefined;
  /** The internal token workers (flyd) present to download archives. */
  flydToken: string;
}

/** Archive bodies are taken as streams (written to disk as they arrive), never buffered. */
const archiveTypes = ['application/gzip', 'application/x-gzip', 'application/octet-stream'];

const bad = (message: string) => flapsError('FLAPS_ERR_BAD_REQUEST', message);

/** `name` or `name:tag` (tag `latest` when left out), as the upload's `tag` query gives it. */
function uploadTag(given: string | undefined): { name: string; tag: string } {
  if (given === undefined) throw bad('querystring.tag is required (name:tag)');
  try {
    const reference = parseImageReference(given);
    if (reference.digest !== undefined) throw bad('querystring.tag must be name:tag, not a digest');
    return { name: reference.name, tag: reference.tag ?? 'latest' };
  } catch (error) {
    if (error instanceof ImageError) throw bad(`querystring.tag: ${error.message}`);
    throw error;
  }
}

function storeOf(images: ImageService): ImageBlobs {
  if (!images.blobs) {
    throw flapsError('FLAPS_ERR_NO_IMAGE_STORE', 'this flaps keeps no images (no --images-dir)');
  }
  return images.blobs;
}

/**
 * Fleet's image routes (not Fly's Machines API, so not in the OpenAPI document; see README):
 * upload and list per app, and the download workers use to pull an image by digest.
 */
export function imageRoutes(app: FastifyInstance, images: ImageService): void {
  void app.register(async (scope) => {
    scope.addContentTypeParser(archiveTypes, (_request, payload, done) => done(null, payload));

    scope.post<{ Params: { app: string }; Querystring: { tag?: string; digest?: string } }>(
      '/v1/apps/:app/images',
      { schema: { hide: true } },
      async (request, reply) => {
        const blobs = storeOf(images);
        const { name, tag } = uploadTag(request.query.tag);
        const expected = request.query.digest;
        if (expected !== undefined && !isDigest(expected)) {
          throw bad('querystring.digest must be sha256:<64 lowercase hex>');
        }
        const length = Number(request.headers['content-length'] ?? 0);
        if (length > blobs.archiveBytesMax) throw tooLarge(blobs.archiveBytesMax);
        const body = request.body as Readable | undefined;
        if (typeof body?.pipe !== 'function') {
          throw bad(`the body must be the image archive, sent as ${archiveTypes.join(' or ')}`);
        }
        const received = await blobs.receive(body, expected);
        const image = {
          name,
          tag,
          digest: received.digest,
          size_bytes: received.sizeBytes,
          manifest: received.manifest,
        };
        await images.rows.record(request.params.app, image);
        return reply.code(received.stored ? 201 : 200).send({
          ...image,
          reference: `${name}@${received.digest}`,
        });
      },
    );
  });

  app.get<{ Params: { app: string } }>(
    '/v1/apps/:app/images',
    { schema: { hide: true } },
    async (request) => ({ images: await images.rows.list(request.params.app) }),
  );

  app.get<{ Params: { app: string; reference: string } }>(
    '/v1/apps/:app/images/:reference',
    { schema: { hide: true } },
    async (request) => {
      const row = await images.rows.byReference(request.params.app, request.params.reference);
      if (!row)
        throw flapsError('FLAPS_ERR_IMAGE_NOT_FOUND', `no image ${request.params.reference}`);
      return row;
    },
  );

  // Outside /v1: workers authenticate with the internal token, not a user's.
  app.get<{ Params: { digest: string } }>(
    '/internal/images/:digest',
    { schema: { hide: true } },
    async (request, reply) => {
      if (!authorizationMatches(request.headers.authorization, images.flydToken)) {
        throw flapsError('FLAPS_ERR_UNAUTHORIZED', 'missing or wrong internal (flyd) token');
      }
      const { digest } = request.params;
      if (!isDigest(digest)) throw bad('params.digest must be sha256:<64 lowercase hex>');
      const blobs = storeOf(images);
      if (!blobs.has(digest)) throw flapsError('FLAPS_ERR_IMAGE_NOT_FOUND', `no image ${digest}`);
      return reply
        .header('content-type', 'application/gzip')
        .header('docker-content-digest', digest)
        .send(createReadStream(blobs.path(digest)));
    },
  );
}
