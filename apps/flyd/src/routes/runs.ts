import type { FastifyInstance } from 'fastify';
import { flydError } from '../errors.js';
import type { FsmEngine } from '../fsm/engine.js';

/**
 * One FSM run's history: its request, status, retry count and last error, each completed step
 * with its start and end times and result, and its child runs with their outcomes. (The active
 * runs, `GET /v1/runs`, and a machine's runs, `GET /v1/machines/{id}/runs`, are machine routes.)
 */
export function runRoutes(app: FastifyInstance, engine: FsmEngine): void {
  app.get<{ Params: { id: string } }>(
    '/v1/runs/:id',
    {
      schema: {
        params: {
          type: 'object',
          properties: { id: { type: 'string', pattern: '^[0-9A-Z]{26}$' } },
        },
      },
    },
    async (request) => {
      const run = engine.run(request.params.id);
      if (!run) throw flydError('FLYD_ERR_NOT_FOUND', `run ${request.params.id} not found`);
      return run;
    },
  );
}
