import { PassThrough } from 'node:stream';
import type { LogLine } from '@fleet/flyd-client';
import type { FastifyInstance } from 'fastify';
import type { LogFeed, LogFollower } from '../logs/feed.js';
import type { MachineService } from '../machines/service.js';

/** As it comes: the HTTP server does not coerce query strings (the schema checks their form). */
interface LogsQuery {
  app?: string;
  instance?: string;
  after?: string;
  limit?: string;
  follow?: 'true' | 'false';
}

const logsQuerySchema = {
  type: 'object',
  properties: {
    app: { type: 'string', minLength: 1 },
    instance: { type: 'string', minLength: 1 },
    after: { type: 'string', pattern: '^[0-9]{1,16}$' },
    limit: { type: 'string', pattern: '^([1-9][0-9]{0,3}|10000)$' },
    follow: { type: 'string', enum: ['true', 'false'] },
  },
  anyOf: [{ required: ['app'] }, { required: ['instance'] }],
  additionalProperties: false,
} as const;

/**
 * Machines' output for flaps' logs routes: `GET /v1/logs?app=…|instance=…` answers the kept lines
 * after `after` (`{lines, next_after}`), or with `follow=true` streams them as NDJSON and then
 * every new line until the reader leaves. Each line names its machine, app and region.
 */
export function logRoutes(app: FastifyInstance, feed: LogFeed, machines: MachineService): void {
  const followers = new Set<{ follower: LogFollower; stream: PassThrough }>();
  // A follow never ends by itself: end them so closing the server does not wait on them.
  app.addHook('preClose', async () => {
    for (const { follower, stream } of followers) {
      follower.close();
      stream.end();
    }
  });

  app.get<{ Params: { id: string } }>('/v1/machines/:id/logs', async (request) => {
    machines.get(request.params.id); // 404 for an unknown machine
    return feed.machineLines(request.params.id);
  });

  app.get<{ Querystring: LogsQuery }>(
    '/v1/logs',
    { schema: { querystring: logsQuerySchema } },
    async (request, reply) => {
      const { app: appName, instance } = request.query;
      const after = Number(request.query.after ?? 0);
      const limit = Number(request.query.limit ?? 1_000);
      if (instance !== undefined) machines.get(instance);
      const filter = { app: appName, machineId: instance };
      if (request.query.follow !== 'true') {
        const lines = feed.read(filter, after, limit);
        return { lines, next_after: lines.at(-1)?.seq ?? after };
      }
      const stream = new PassThrough();
      const follower = feed.follow(filter, after, (line: LogLine) =>
        stream.write(`${JSON.stringify(line)}\n`),
      );
      const entry = { follower, stream };
      followers.add(entry);
      stream.on('drain', () => follower.resume());
      reply.raw.once('close', () => {
        follower.close();
        followers.delete(entry);
        stream.destroy();
      });
      reply.header('content-type', 'application/x-ndjson');
      return reply.send(stream);
    },
  );
}
