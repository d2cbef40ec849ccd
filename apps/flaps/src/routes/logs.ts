import { PassThrough } from 'node:stream';
import type { FlydClient, LogLine as WorkerLogLine } from '@fleet/flyd-client';
import type { Logger } from '@fleet/service';
import type { FastifyInstance, FastifyReply } from 'fastify';
import {
  AppLogFollow,
  decodePositions,
  encodePositions,
  type LogPositions,
  type LogsQuery,
  logAttributes,
  logWorkers,
  workerPath,
} from '../app-logs.js';
import type { FleetState } from '../state.js';

/** As it comes: the server does not coerce query strings (the schema checks their form). */
interface LogsQuerystring {
  instance?: string;
  region?: string;
  next_token?: string;
  limit?: string;
  follow?: 'true' | 'false';
}

const querystring = {
  type: 'object',
  properties: {
    instance: { type: 'string', minLength: 1, maxLength: 64 },
    region: { type: 'string', pattern: '^[a-z0-9]{1,16}$' },
    next_token: { type: 'string', maxLength: 8_192 },
    limit: { type: 'string', pattern: '^([1-9][0-9]{0,2}|1000)$' },
    follow: { type: 'string', enum: ['true', 'false'] },
  },
} as const;

/**
 * An app's logs, or one machine's, gathered from every worker that runs them. Without `follow`
 * the answer is Fly's logs page (`data` entries with `attributes`, `meta.next_token` to ask for
 * what came after); with `follow=true` it is NDJSON, one entry's attributes a line, live until the
 * reader leaves. Each line names its machine (`instance`) and region.
 */
export function logRoutes(
  app: FastifyInstance,
  state: FleetState,
  flyd: FlydClient,
  logger: Logger,
): void {
  const follows = new Set<{ follow: AppLogFollow; out: PassThrough }>();
  app.addHook('preClose', async () => {
    for (const { follow, out } of follows) {
      follow.close();
      out.end();
    }
  });

  const serve = async (query: LogsQuery, raw: LogsQuerystring, reply: FastifyReply) => {
    const positions = raw.next_token === undefined ? {} : decodePositions(raw.next_token);
    const workers = await logWorkers(state, query);
    if (raw.follow === 'true') {
      const out = new PassThrough();
      const follow = new AppLogFollow(query, positions, state, flyd, out, logger);
      const entry = { follow, out };
      follows.add(entry);
      reply.raw.once('close', () => {
        follow.close();
        follows.delete(entry);
        out.destroy();
      });
      follow.start(workers);
      reply.header('content-type', 'application/x-ndjson');
      return reply.send(out);
    }
    const limit = Number(raw.limit ?? 100);
    const pages = await Promise.all(
      workers.map(async (worker) => {
        const after = positions[worker.hostId] ?? 0;
        try {
          const page = await flyd.call<{ lines: WorkerLogLine[] }>(
            worker.url,
            'GET',
            workerPath(query, after, `&limit=${limit}`),
          );
          return { worker, lines: page.lines };
        } catch (error) {
          logger.warn({ err: error, host: worker.hostId }, 'logs: a worker did not answer');
          return { worker, lines: [], unreachable: true };
        }
      }),
    );
    const lines = pages
      .flatMap(({ worker, lines }) => lines.map((line) => ({ host: worker.hostId, line })))
      .filter(({ line }) => query.region === undefined || line.region === query.region)
      .sort((a, b) => a.line.timestamp - b.line.timestamp || a.line.seq - b.line.seq)
      .slice(0, limit);
    const next: LogPositions = { ...positions };
    for (const { host, line } of lines) next[host] = Math.max(next[host] ?? 0, line.seq);
    const unreachable = pages.filter((page) => page.unreachable).map((page) => page.worker.hostId);
    return {
      data: lines.map(({ host, line }) => ({
        id: `${host}-${line.seq}`,
        type: 'logs',
        attributes: logAttributes(line),
      })),
      meta: {
        next_token: encodePositions(next),
        ...(unreachable.length > 0 ? { unreachable_hosts: unreachable } : {}),
      },
    };
  };

  app.get<{ Params: { app: string }; Querystring: LogsQuerystring }>(
    '/v1/apps/:app/logs',
    { schema: { querystring } },
    async (request, reply) =>
      serve(
        { app: request.params.app, instance: request.query.instance, region: request.query.region },
        request.query,
        reply,
      ),
  );

  app.get<{ Params: { app: string; id: string }; Querystring: LogsQuerystring }>(
    '/v1/apps/:app/machines/:id/logs',
    { schema: { querystring } },
    async (request, reply) =>
      serve(
        { app: request.params.app, instance: request.params.id, region: request.query.region },
        request.query,
        reply,
      ),
  );
}
