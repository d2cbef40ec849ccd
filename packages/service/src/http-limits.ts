import type { FastifyInstance } from 'fastify';
import type { ConfigOf } from './config.js';
import { HttpError } from './errors.js';

/**
 * The flags every HTTP server of the fleet takes for its own protection: requests in flight at
 * once, and how long a client may take to send its headers, its whole request, and how long an
 * idle keep-alive connection is kept. Spread into a server's spec; `httpLimits(config)` reads them.
 */
export const httpLimitsSpec = {
  'in-flight-max': {
    type: 'number',
    default: 1024,
    min: 1,
    max: 1_000_000,
    description:
      'requests handled at once (streams and long waits count until they end); past it 503',
  },
  'client-headers-timeout-ms': {
    type: 'number',
    default: 10_000,
    min: 100,
    max: 600_000,
    description: "a client that has not sent a request's headers by then is cut off",
  },
  'client-request-timeout-ms': {
    type: 'number',
    default: 60_000,
    min: 100,
    max: 3_600_000,
    description: 'a client that has not sent a whole request (headers and body) by then gets 408',
  },
  'keep-alive-timeout-ms': {
    type: 'number',
    default: 5_000,
    min: 100,
    max: 600_000,
    description: 'an idle keep-alive connection is closed after this long',
  },
} as const;

export interface HttpLimits {
  inFlightMax: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** The error code of the 503 past `inFlightMax` (the server's own, e.g. FLAPS_ERR_OVERLOADED). */
  overloadedCode: string;
}

export function httpLimits(
  config: ConfigOf<typeof httpLimitsSpec>,
  overloadedCode: string,
): HttpLimits {
  return {
    inFlightMax: config['in-flight-max'],
    headersTimeoutMs: config['client-headers-timeout-ms'],
    requestTimeoutMs: config['client-request-timeout-ms'],
    keepAliveTimeoutMs: config['keep-alive-timeout-ms'],
    overloadedCode,
  };
}

/** The limits at their flags' defaults, with those given: for a listener without flags of its own. */
export function defaultHttpLimits(
  overloadedCode: string,
  given: Partial<Omit<HttpLimits, 'overloadedCode'>> = {},
): HttpLimits {
  return {
    inFlightMax: httpLimitsSpec['in-flight-max'].default,
    headersTimeoutMs: httpLimitsSpec['client-headers-timeout-ms'].default,
    requestTimeoutMs: httpLimitsSpec['client-request-timeout-ms'].default,
    keepAliveTimeoutMs: httpLimitsSpec['keep-alive-timeout-ms'].default,
    overloadedCode,
    ...given,
  };
}

/** Limits as Node's HTTP server takes them (the headers bound never above the request bound). */
export function serverTimeouts(limits: HttpLimits) {
  return {
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs),
  };
}

/**
 * At most `inFlightMax` requests handled at once: past it the server answers 503 with its code
 * and `retry-after` at once, instead of queueing work it cannot keep up with. `/metrics` is
 * never refused, so an overloaded server can still be watched. Returns the count in flight.
 */
export function limitInFlight(app: FastifyInstance, limits: HttpLimits): () => number {
  let inFlight = 0;
  app.addHook('onRequest', async (request, reply) => {
    if (request.url === '/metrics') return;
    if (inFlight >= limits.inFlightMax) {
      reply.header('retry-after', '1');
      throw new HttpError(
        503,
        limits.overloadedCode,
        `${limits.inFlightMax} requests already in flight; retry shortly`,
      );
    }
    inFlight++;
    reply.raw.once('close', () => inFlight--);
  });
  return () => inFlight;
}
