import { ImageError, parseImageReference } from '@fleet/images';
import type { FastifyInstance } from 'fastify';
import { flapsError } from './errors.js';
import type { ImageRows } from './image-rows.js';

/** The routes whose body carries a whole machine config: create and update. */
const configRoutes = new Set(['/v1/apps/:app/machines', '/v1/apps/:app/machines/:id']);

/**
 * Pins a machine config's image to a digest before it reaches a worker, so a machine always
 * runs what was deployed, whatever the tag names later: `name:tag` uploaded to the app becomes
 * `name@sha256:...`; `name@sha256:...` must be an image of the app. A bare `name`, or a tag no
 * upload made, is left for the worker's local image folder (as before images were uploaded).
 */
export function imageResolution(app: FastifyInstance, rows: ImageRows): void {
  app.addHook('preHandler', async (request) => {
    if (request.method !== 'POST' || !configRoutes.has(request.routeOptions.url ?? '')) return;
    const config = (request.body as { config?: { image?: unknown } } | undefined)?.config;
    const appName = (request.params as { app: string }).app;
    if (typeof config?.image !== 'string') return;
    let reference: ReturnType<typeof parseImageReference>;
    try {
      reference = parseImageReference(config.image);
    } catch (error) {
      if (error instanceof ImageError) return; // not ours: the worker's local names are looser
      throw error;
    }
    if (reference.digest !== undefined) {
      if (!(await rows.byReference(appName, config.image))) {
        throw flapsError(
          'FLAPS_ERR_BAD_CONFIG',
          `config.image: no image ${config.image} was uploaded to app ${appName}`,
        );
      }
      return;
    }
    if (reference.tag === undefined) return;
    const tagged = await rows.byReference(appName, config.image);
    if (tagged) config.image = `${tagged.name}@${tagged.digest}`;
  });
}
