import type { IncomingHttpHeaders } from 'node:http';
import type { RouteOptions } from '@fleet/catalog';

/**
 * Fly's request routing headers, as catalog route options: `fly-prefer-region` and
 * `fly-prefer-instance-id` fall back to the usual order when they cannot be honoured;
 * `fly-force-region` and `fly-force-instance-id` restrict the candidates (no candidate: 503).
 */
export function routingControls(headers: IncomingHttpHeaders): RouteOptions {
  const options: RouteOptions = {};
  const preferRegion = single(headers['fly-prefer-region']);
  const forceRegion = single(headers['fly-force-region']);
  const preferInstance = single(headers['fly-prefer-instance-id']);
  const forceInstance = single(headers['fly-force-instance-id']);
  if (preferRegion) options.preferRegion = preferRegion;
  if (forceRegion) options.forceRegion = forceRegion;
  if (preferInstance) options.preferInstance = preferInstance;
  if (forceInstance) options.forceInstance = forceInstance;
  return options;
}

function single(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  return text?.trim() || undefined;
}
