import { X509Certificate } from 'node:crypto';
import { present } from '@fleet/service/invariant';
import type { FastifyInstance } from 'fastify';
import { flapsError } from '../errors.js';
import type { FleetState, HostnameRow } from '../state.js';

/** A DNS name an edge can be asked for by SNI: labels of letters, digits and dashes. */
const hostnamePattern =
  '^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$';

const hostnameParams = {
  type: 'object',
  properties: { hostname: { type: 'string', pattern: hostnamePattern, maxLength: 253 } },
};

/** A hostname as the API shows it: whether an edge issued its certificate, and what it says. */
function certificateView(row: HostnameRow) {
  if (!row.cert_pem) return { hostname: row.hostname, app: row.app, issued: false };
  const certificate = new X509Certificate(row.cert_pem);
  return {
    hostname: row.hostname,
    app: row.app,
    issued: true,
    not_after: new Date(certificate.validTo).toISOString(),
    issuer: certificate.issuer,
    subject_alt_names: certificate.subjectAltName ?? '',
    fingerprint_sha256: certificate.fingerprint256,
  };
}

/**
 * `/v1/apps/{app}/certificates` (a Fleet extension: Fly manages certificates through its GraphQL
 * API). Adding a hostname routes it to the app; the first TLS handshake for it at any edge issues
 * its certificate from the fleet's CA (fly-proxy's on-demand issuance), and every edge serves it
 * from then on. Private keys never leave the certificates table, sealed; the API shows the
 * certificate only.
 */
export function certificateRoutes(app: FastifyInstance, state: FleetState): void {
  app.get<{ Params: { app: string } }>('/v1/apps/:app/certificates', async (request) => ({
    certificates: (await state.appHostnames(request.params.app)).map(certificateView),
  }));

  app.post<{ Params: { app: string }; Body: { hostname: string } }>(
    '/v1/apps/:app/certificates',
    {
      schema: {
        body: {
          type: 'object',
          required: ['hostname'],
          properties: { hostname: hostnameParams.properties.hostname },
        },
      },
    },
    async (request, reply) => {
      const { app: appName } = request.params;
      const hostname = request.body.hostname.toLowerCase();
      const owner = await state.hostnameApp(hostname);
      if (owner !== undefined && owner !== appName)
        throw flapsError('FLAPS_ERR_NAME_TAKEN', `hostname ${hostname} belongs to another app`);
      if (owner === undefined) await state.addHostname(appName, hostname);
      const row = (await state.appHostnames(appName)).find((one) => one.hostname === hostname);
      return reply
        .code(owner === undefined ? 201 : 200)
        .send(certificateView(present(row, `the hostname ${hostname} just added`)));
    },
  );

  app.get<{ Params: { app: string; hostname: string } }>(
    '/v1/apps/:app/certificates/:hostname',
    { schema: { params: hostnameParams } },
    async (request) => {
      const hostname = request.params.hostname.toLowerCase();
      const row = (await state.appHostnames(request.params.app)).find(
        (one) => one.hostname === hostname,
      );
      if (!row)
        throw flapsError(
          'FLAPS_ERR_HOSTNAME_NOT_FOUND',
          `hostname ${hostname} is not one of app ${request.params.app}`,
        );
      return certificateView(row);
    },
  );

  app.delete<{ Params: { app: string; hostname: string } }>(
    '/v1/apps/:app/certificates/:hostname',
    { schema: { params: hostnameParams } },
    async (request) => {
      const appName = request.params.app;
      const hostname = request.params.hostname.toLowerCase();
      if ((await state.hostnameApp(hostname)) !== appName)
        throw flapsError(
          'FLAPS_ERR_HOSTNAME_NOT_FOUND',
          `hostname ${hostname} is not one of app ${appName}`,
        );
      await state.removeHostname(appName, hostname);
      return { ok: true };
    },
  );
}
