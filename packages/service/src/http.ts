import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  LogController,
} from 'fastify';
import { parseListenAddress } from './address.js';
import { HttpErrorCodes } from './error-codes.js';
import { defineErrors, HttpError } from './errors.js';
import { type HttpLimits, limitInFlight, serverTimeouts } from './http-limits.js';
import { invariant } from './invariant.js';
import type { Logger } from './logger.js';
import type { MetricsExport } from './metrics.js';

export interface HttpServerOptions {
  logger: Logger;
  /** Serves GET /metrics from this export when given. */
  metrics?: MetricsExport;
  /** Largest request body accepted, in bytes. */
  bodyLimitBytes?: number;
  /** Requests in flight and client timeouts (`httpLimitsSpec`'s flags); Node's defaults without. */
  limits?: HttpLimits;
}

/** The errors the server answers by itself (README: Error codes). */
const httpError = defineErrors(HttpErrorCodes);

/**
 * A fastify instance with Fleet's conventions: every error is `{"error", "code"}` JSON with a 4xx
 * naming the problem (or a 500 that is logged), bodies are JSON (a text body is a 415), bodyless
 * JSON POSTs are accepted (Fly clients send them), /metrics serves Prometheus text, and with
 * `limits` requests in flight and slow clients are bounded.
 */
export function createHttpServer(options: HttpServerOptions): FastifyInstance {
  const app = Fastify({
    // pino's Logger is a FastifyBaseLogger; widening keeps route handlers on the default types.
    loggerInstance: options.logger as FastifyBaseLogger,
    // Request start/end lines would drown the logs of a proxy or an API; errors are logged below.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimitBytes ?? 1024 * 1024,
    ajv: { customOptions: { allErrors: false, coerceTypes: false } },
    ...(options.limits ? timeoutsOf(options.limits) : {}),
  });
  if (options.limits) limitInFlight(app, options.limits);
  // Bodies are JSON (or a route's own type): a text body is answered 415 by fastify, rather than
  // parsed as a string that the route's schema then calls "not an object".
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = (body as string).trim();
    if (text === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      done(httpError('BAD_JSON', `request body is not JSON: ${(error as Error).message}`));
    }
  });
  app.setErrorHandler((error: FastifyError | HttpError, request, reply) => {
    if (error instanceof HttpError) {
      return reply.code(error.statusCode).send({ error: error.message, code: error.code });
    }
    const status = error.statusCode ?? 500;
    if (status >= 500) {
      request.log.error({ err: error, url: request.url }, 'request failed');
      return reply.code(status).send({ error: 'internal error', code: 'INTERNAL' });
    }
    const code = error.validation ? 'BAD_REQUEST' : (error.code ?? 'BAD_REQUEST');
    // fastify says only "Unsupported Media Type": name the type sent, and what JSON is sent as.
    const message =
      code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
        ? `this route does not read a body of content-type ${request.headers['content-type'] ?? '(none)'} (JSON is sent as application/json)`
        : error.message;
    return reply.code(status).send({ error: message, code });
  });
  app.setNotFoundHandler((request, reply) => {
    reply
      .code(HttpErrorCodes.NO_ROUTE[0])
      .send({ error: `no route for ${request.method} ${request.url}`, code: 'NO_ROUTE' });
  });
  const exporter = options.metrics;
  if (exporter) {
    app.get('/metrics', (request, reply) => {
      reply.hijack();
      exporter.handle(request.raw, reply.raw);
    });
  }
  return app;
}

function timeoutsOf(limits: HttpLimits) {
  const { requestTimeout, keepAliveTimeout, headersTimeout } = serverTimeouts(limits);
  // Node checks the header and request bounds every connectionsCheckingInterval (30 s by
  // default): check four times per headers bound, so a slow client is cut close to it.
  const connectionsCheckingInterval = Math.max(25, Math.min(1_000, headersTimeout / 4));
  return {
    requestTimeout,
    keepAliveTimeout,
    http: { headersTimeout, requestTimeout, connectionsCheckingInterval },
  };
}

/**
 * The listening socket a supervisor handed over (systemd socket activation, `sd_listen_fds`):
 * fd 3 when `LISTEN_FDS` is at least 1 and `LISTEN_PID`, if set, is this process.
 */
export function inheritedListenerFd(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const count = Number(env.LISTEN_FDS ?? 0);
  if (!Number.isInteger(count) || count < 1) return undefined;
  if (env.LISTEN_PID !== undefined && Number(env.LISTEN_PID) !== process.pid) return undefined;
  return 3;
}

/**
 * Listens on `host:port` — or, with `inherit` and a socket handed over by a supervisor, on that
 * socket, so that a restart refuses no connection (seed 002) — and logs
 * `{"event":"listening","listener","url"}`; returns the URL with the port the kernel chose.
 */
export async function listenHttp(
  app: FastifyInstance,
  addressText: string,
  listener = 'api',
  options: { inherit?: boolean } = {},
): Promise<string> {
  const { host, port } = parseListenAddress(addressText);
  const fd = options.inherit ? inheritedListenerFd() : undefined;
  // Node's listen takes `{ fd }` for an inherited socket; fastify passes its options through.
  await app.listen(fd === undefined ? { host, port } : ({ fd, host } as { host: string }));
  const address = app.server.address();
  invariant(address !== null && typeof address !== 'string', 'a TCP listener has a port');
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${shownHost}:${address.port}`;
  announceListening(app.log as Logger, listener, url);
  return url;
}

/**
 * Logs `{"event":"listening","listener","url"}`. Supervisors learn ports from this line, so it is
 * printed whatever the log level.
 */
export function announceListening(logger: Logger, listener: string, url: string): void {
  const record = { event: 'listening', listener, url };
  const message = `${listener} listening on ${url}`;
  if (logger.isLevelEnabled('info')) logger.info(record, message);
  else
    process.stdout.write(
      `${JSON.stringify({ level: 30, time: Date.now(), ...record, msg: message })}\n`,
    );
}
