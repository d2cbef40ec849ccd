import type { FastifyInstance } from 'fastify';
import { type Authenticator, newToken, requireOperator, sha256 } from '../auth.js';
import { flapsError } from '../errors.js';
import type { FleetState } from '../state.js';

/**
 * `/v1/tokens` (operator only): mint an organization's API token — answered once, stored as its
 * SHA-256 — and revoke one by the id the mint answered.
 */
export function tokenRoutes(app: FastifyInstance, state: FleetState, auth: Authenticator): void {
  app.post<{ Body: { org_slug: string; name?: string } }>(
    '/v1/tokens',
    {
      schema: {
        body: {
          type: 'object',
          required: ['org_slug'],
          properties: {
            org_slug: { type: 'string', minLength: 1, maxLength: 63 },
            name: { type: 'string', maxLength: 200 },
          },
        },
      },
    },
    async (request, reply) => {
      requireOperator(request.principal);
      const token = newToken();
      const hash = sha256(token);
      await state.addToken(hash, request.body.org_slug, request.body.name ?? '');
      return reply.code(201).send({
        id: hash.slice(0, 16),
        token,
        org_slug: request.body.org_slug,
        name: request.body.name ?? '',
      });
    },
  );

  app.delete<{ Params: { id: string } }>('/v1/tokens/:id', async (request) => {
    requireOperator(request.principal);
    if (!/^[0-9a-f]{16}$/.test(request.params.id)) {
      throw flapsError('FLAPS_ERR_BAD_REQUEST', 'a token id is 16 hex characters');
    }
    const revoked = await state.revokeToken(request.params.id);
    auth.forget();
    return { ok: true, revoked };
  });
}
