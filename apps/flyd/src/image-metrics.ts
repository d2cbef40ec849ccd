import { metrics } from '@opentelemetry/api';

/** The image cache's instruments. Made on first use (after the service registers its provider). */
export interface ImageMetrics {
  /** Images downloaded from flaps (a cache miss); a machine served from the cache adds nothing. */
  pulls: { add(count: number): void };
  /** Cached images removed to keep the cache under --image-cache-bytes-max. */
  evictions: { add(count: number): void };
}

let made: ImageMetrics | undefined;

export function imageMetrics(): ImageMetrics {
  if (made) return made;
  const meter = metrics.getMeter('fleet.flyd');
  made = {
    pulls: meter.createCounter('flyd_image_pulls', {
      description: 'images downloaded from flaps into the cache (each first use on this worker)',
    }),
    evictions: meter.createCounter('flyd_image_evictions', {
      description: 'cached images removed, least recently used first, to stay under the bound',
    }),
  };
  return made;
}
