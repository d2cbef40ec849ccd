import type { FastifyInstance } from 'fastify';
import { flapsError } from '../errors.js';
import type { SecretStore, SecretView } from '../secret-store.js';

/** An environment variable's name, as a secret reaches the machine. */
const namePattern = '^[A-Za-z_][A-Za-z0-9_]{0,255}$';
/** A secret's value: text an environment can hold (no NUL), at most 64 KiB. */
const value = { type: 'string', maxLength: 65_536, pattern: '^[^\\u0000]*$' };
/** Bounds of Fleet's own: secrets changed by one call, and kept per app. */
const secretsPerCallMax = 100;
const secretsPerAppMax = 500;

/**
 * `/v1/apps/{app}/secrets`, as Fly's Machines API has them: list (name, digest, times — never a
 * value), set several and unset (a `null` value) in one call, unset one by name. The
 * values are sealed before they are stored (secret-store.ts); machines get them as environment
 * variables when they next start (flyd opens them). Nothing restarts here: `fleet secrets set`
 * restarts the machines unless told `--stage`, as flyctl does.
 */
export function secretRoutes(app: FastifyInstance, secrets: SecretStore): void {
  app.get<{ Params: { app: string } }>('/v1/apps/:app/secrets', async (request) => ({
    secrets: await secrets.list(request.params.app),
  }));

  app.post<{ Params: { app: string }; Body: { values: Record<string, string | null> } }>(
    '/v1/apps/:app/secrets',
    {
      schema: {
        body: {
          type: 'object',
          required: ['values'],
          properties: {
            values: {
              type: 'object',
              maxProperties: secretsPerCallMax,
              propertyNames: { pattern: namePattern },
              additionalProperties: { anyOf: [value, { type: 'null' }] },
            },
          },
        },
      },
    },
    async (request) => {
      const { app: appName } = request.params;
      await refuseOverBound(secrets, appName, request.body.values);
      return { secrets: await secrets.update(appName, request.body.values) };
    },
  );

  app.delete<{ Params: { app: string; name: string } }>(
    // No pattern on `name`: a name no secret can have is simply not found, after the app check.
    '/v1/apps/:app/secrets/:name',
    async (request) => {
      const { app: appName, name } = request.params;
      if (!(await secrets.list(appName)).some((secret) => secret.name === name))
        throw flapsError('FLAPS_ERR_SECRET_NOT_FOUND', `app ${appName} has no secret ${name}`);
      await secrets.update(appName, { [name]: null });
      return { ok: true };
    },
  );
}

/** 400 when the call would leave the app with more than `secretsPerAppMax` secrets. */
async function refuseOverBound(
  secrets: SecretStore,
  app: string,
  values: Record<string, string | null>,
): Promise<void> {
  const names = new Set((await secrets.list(app)).map((secret: SecretView) => secret.name));
  for (const [name, value] of Object.entries(values)) {
    if (value === null) names.delete(name);
    else names.add(name);
  }
  if (names.size > secretsPerAppMax)
    throw flapsError(
      'FLAPS_ERR_BAD_REQUEST',
      `values: app ${app} would have ${names.size} secrets; at most ${secretsPerAppMax} are kept`,
    );
}
