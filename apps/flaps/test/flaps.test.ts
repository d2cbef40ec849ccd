import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorCodesInReadme } from '@fleet/service';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlapsErrors } from '../src/errors.js';
import { type Fleet, hello, operatorToken, startFleet } from './fleet.js';

const here = dirname(fileURLToPath(import.meta.url));

// The Machines API as Fly clients use it, over a real corrosion and a real flyd.
describe('flaps', () => {
  let fleet: Fleet;
  /** Calls flaps with `auth` as the whole Authorization header (the operator's by default). */
  const call = (method: string, path: string, body?: unknown, auth?: string) =>
    fleet.call(method, path, body, { auth });

  beforeAll(async () => {
    fleet = await startFleet();
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('creates an app, refuses a second with the same name, and validates names', async () => {
    expect(await call('POST', '/v1/apps', { app_name: 'shop', org_slug: 'acme' })).toMatchObject({
      status: 201,
      body: { name: 'shop', organization: { slug: 'acme' } },
    });
    expect((await call('POST', '/v1/apps', { name: 'shop' })).status).toBe(422);
    expect((await call('POST', '/v1/apps', { app_name: 'Bad_Name' })).body.error).toMatch(
      /lowercase/,
    );
    expect((await call('GET', '/v1/apps/shop')).body).toMatchObject({ name: 'shop' });
    expect((await call('GET', '/v1/apps/nope')).status).toBe(404);
  });

  it('drives a machine through its life and answers in Fly shapes', async () => {
    const created = await call('POST', '/v1/apps/shop/machines', { region: 'ams', config: hello });
    expect(created.status).toBe(200);
    const id = created.body.id as string;
    expect(created.body).toMatchObject({
      region: 'ams',
      image_ref: { repository: 'hello', tag: 'latest' },
    });
    expect(
      await call('GET', `/v1/apps/shop/machines/${id}/wait?state=started&timeout=10s`),
    ).toMatchObject({ status: 200 });
    const listed = await call('GET', '/v1/apps/shop/machines');
    expect(listed.body).toMatchObject([{ id, state: 'started', region: 'ams' }]);
    expect((await call('GET', '/v1/apps/shop/machines?region=ord')).body).toEqual([]);
    expect((await call('GET', '/v1/apps/shop/machines?state=started')).body).toMatchObject([
      { id },
    ]);
    const events = (await call('GET', `/v1/apps/shop/machines/${id}/events`)).body as unknown as {
      status: string;
    }[];
    expect(events[0]?.status).toBe('started');
    expect((await call('GET', '/v1/platform/regions')).body).toMatchObject({
      regions: [{ code: 'ams', workers: 1 }],
    });
    expect(
      (await call('POST', `/v1/apps/shop/machines/${id}/stop`, { timeout: '5s' })).body,
    ).toEqual({ ok: true });
    expect((await call('GET', `/v1/apps/shop/machines/${id}`)).body).toMatchObject({
      state: 'stopped',
    });
    expect((await call('POST', `/v1/apps/shop/machines/${id}/start`)).body).toMatchObject({
      previous_state: 'stopped',
    });
    expect(
      (await call('POST', `/v1/apps/shop/machines/${id}/restart?timeout=5s&signal=SIGTERM`)).body,
    ).toEqual({ ok: true });
    expect((await call('GET', `/v1/apps/shop/machines/${id}`)).body).toMatchObject({
      state: 'started',
    });
    const updated = await call('POST', `/v1/apps/shop/machines/${id}`, {
      config: { ...hello, env: { V: '2' } },
    });
    expect(updated.body).toMatchObject({ state: 'started', config: { env: { V: '2' } } });
    expect(
      (await call('POST', `/v1/apps/shop/machines/${id}/metadata/team`, { value: 'web' })).status,
    ).toBe(204);
    expect((await call('GET', `/v1/apps/shop/machines/${id}/metadata`)).body).toEqual({
      team: 'web',
    });
    expect((await call('DELETE', `/v1/apps/shop/machines/${id}/metadata/team`)).status).toBe(204);
    expect((await call('POST', `/v1/apps/shop/machines/${id}/cordon`)).body).toEqual({ ok: true });
    expect((await call('POST', `/v1/apps/shop/machines/${id}/uncordon`)).body).toEqual({
      ok: true,
    });
    expect((await call('POST', `/v1/apps/shop/machines/${id}/suspend`)).body).toEqual({ ok: true });
    expect((await call('GET', `/v1/apps/shop/machines/${id}`)).body).toMatchObject({
      state: 'suspended',
    });
    expect(
      await call('GET', `/v1/apps/shop/machines/${id}/wait?state=suspended&timeout=5`),
    ).toMatchObject({ status: 200 });
    expect((await call('POST', `/v1/apps/shop/machines/${id}/start`)).body).toMatchObject({
      previous_state: 'suspended',
    });
    const versions = (await call('GET', `/v1/apps/shop/machines/${id}/versions`))
      .body as unknown as { version: string; user_config: { env?: { V: string } } }[];
    expect(versions).toHaveLength(2);
    expect(versions[0]).toMatchObject({ user_config: { env: { V: '2' } } });
    const ps = (await call('GET', `/v1/apps/shop/machines/${id}/ps`)).body as unknown as {
      pid: number;
    }[];
    expect(ps[0]).toMatchObject({ pid: expect.any(Number), command: expect.any(String) });
    expect(
      (await call('POST', `/v1/apps/shop/machines/${id}/exec`, { command: ['printenv', 'V'] }))
        .body,
    ).toEqual({ stdout: '2\n', stderr: '', exit_code: 0, exit_signal: 0 });
    expect((await call('POST', `/v1/apps/shop/machines/${id}/exec`, { command: [] })).status).toBe(
      400,
    );
    expect(
      (await call('POST', `/v1/apps/shop/machines/${id}/signal`, { signal: 'nope' })).status,
    ).toBe(400);
    // 28 is SIGWINCH, which the machine ignores: it keeps running.
    expect(
      (await call('POST', `/v1/apps/shop/machines/${id}/signal`, { signal: 28 })).body,
    ).toEqual({ ok: true });
    expect((await call('DELETE', `/v1/apps/shop/machines/${id}`)).status).toBe(412);
    expect((await call('DELETE', `/v1/apps/shop/machines/${id}?force=true`)).body).toEqual({
      ok: true,
    });
    expect((await call('GET', '/v1/apps/shop/machines')).body).toEqual([]);
    expect((await call('GET', '/v1/apps/shop/machines?include_deleted=true')).body).toMatchObject([
      { id, state: 'destroyed' },
    ]);
    // Not a quiet `false`.
    expect((await call('GET', '/v1/apps/shop/machines?include_deleted=maybe')).status).toBe(400);
  });

  it('guards a machine with a lease: only the nonce holder may change it', async () => {
    const id = (await call('POST', '/v1/apps/shop/machines', { region: 'ams', config: hello })).body
      .id as string;
    await call('GET', `/v1/apps/shop/machines/${id}/wait?state=started&timeout=10`);
    expect((await call('GET', `/v1/apps/shop/machines/${id}/lease`)).status).toBe(404);
    const taken = await call('POST', `/v1/apps/shop/machines/${id}/lease?ttl=30`, {
      description: 'deploy',
    });
    const lease = (taken.body as { data: { nonce: string; expires_at: number } }).data;
    expect(lease.nonce).toMatch(/^[0-9a-f]{12}$/);
    expect((await call('POST', `/v1/apps/shop/machines/${id}/lease`, {})).status).toBe(409);
    const refused = await call('POST', `/v1/apps/shop/machines/${id}/stop`);
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatch(/lease currently held/);
    const withNonce = (method: string, path: string, body?: unknown) =>
      fleet.call(method, path, body ?? {}, { headers: { 'fly-machine-lease-nonce': lease.nonce } });
    expect(
      (await withNonce('POST', `/v1/apps/shop/machines/${id}/lease`, { ttl: 60 })).status,
    ).toBe(200);
    expect((await withNonce('POST', `/v1/apps/shop/machines/${id}/stop`)).body).toEqual({
      ok: true,
    });
    expect((await withNonce('DELETE', `/v1/apps/shop/machines/${id}/lease`)).body).toEqual({
      ok: true,
    });
    expect((await call('DELETE', `/v1/apps/shop/machines/${id}`)).body).toEqual({ ok: true });
  });

  it('an app delete stopped by a machine leased by someone else keeps the app, and succeeds once repeated after the release', async () => {
    expect((await call('POST', '/v1/apps', { app_name: 'leased-app' })).status).toBe(201);
    const machines = '/v1/apps/leased-app/machines';
    const free = (await call('POST', machines, { config: hello, skip_launch: true })).body.id;
    const held = (await call('POST', machines, { config: hello })).body.id as string;
    await call('GET', `${machines}/${held}/wait?state=started&timeout=10`);
    const volume = (await call('POST', '/v1/apps/leased-app/volumes', { name: 'data' })).body;
    const taken = await call('POST', `${machines}/${held}/lease?ttl=60`);
    const nonce = taken.body.data.nonce as string;
    const refused = await call('DELETE', '/v1/apps/leased-app');
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatch(/lease currently held/);
    // The app stays, with the leased machine running and the volume untouched; the free one went.
    expect((await call('GET', '/v1/apps/leased-app')).status).toBe(200);
    const left = (await call('GET', machines)).body as { id: string; state: string }[];
    expect(left).toEqual([expect.objectContaining({ id: held, state: 'started' })]);
    expect(left.map((one) => one.id)).not.toContain(free);
    expect((await call('GET', `/v1/apps/leased-app/volumes/${volume.id}`)).body.state).toBe(
      'created',
    );
    await fleet.call('DELETE', `${machines}/${held}/lease`, undefined, {
      headers: { 'fly-machine-lease-nonce': nonce },
    });
    expect((await call('DELETE', '/v1/apps/leased-app')).status).toBe(202);
    expect((await call('GET', '/v1/apps/leased-app')).status).toBe(404);
    const onWorker = await fleet.flyd('w1', 'GET', `/v1/volumes/${volume.id}`);
    expect(onWorker.status === 404 || onWorker.body.state === 'destroyed').toBe(true);
  });

  it('accepts the FlyV1 scheme and refuses calls without the token', async () => {
    expect((await call('GET', '/v1/apps/shop', undefined, `FlyV1 ${operatorToken}`)).status).toBe(
      200,
    );
    expect(await call('GET', '/v1/apps/shop', undefined, 'Bearer wrong')).toMatchObject({
      status: 401,
      body: { code: 'FLAPS_ERR_UNAUTHORIZED' },
    });
  });

  it('answers bad input with 4xx JSON naming the problem', async () => {
    expect((await call('POST', '/v1/apps/shop/machines', {})).body.error).toMatch(/config/);
    expect((await call('POST', '/v1/apps/nope/machines', { config: hello })).status).toBe(404);
    expect((await call('GET', '/v1/apps/shop/machines/ffffffffffffff')).status).toBe(404);
    const full = await call('POST', '/v1/apps/shop/machines', { region: 'syd', config: hello });
    expect(full).toMatchObject({ status: 412, body: { code: 'FLAPS_ERR_NO_CAPACITY' } });
    expect(full.body.error).toMatch(/regions with room: ams/);
    const badImage = await call('POST', '/v1/apps/shop/machines', { config: { image: 'nope' } });
    expect(badImage).toMatchObject({
      status: 400,
      body: { error: expect.stringMatching(/unknown image nope/) },
    });
  });

  it('keeps organizations apart: an org token reaches its own apps only', async () => {
    const mint = async (org: string) =>
      (await call('POST', '/v1/tokens', { org_slug: org, name: `${org} deploys` })).body as {
        id: string;
        token: string;
      };
    const acme = await mint('initech');
    const other = await mint('other');
    expect(acme.token).toMatch(/^fo1_/);
    const as = (minted: { token: string }) => `Bearer ${minted.token}`;
    expect((await call('POST', '/v1/apps', { app_name: 'acme-web' }, as(acme))).body).toMatchObject(
      {
        organization: { slug: 'initech' },
      },
    );
    expect(
      (await call('POST', '/v1/apps', { app_name: 'sneaky', org_slug: 'other' }, as(acme))).status,
    ).toBe(404);
    const acmeApps = (await call('GET', '/v1/apps', undefined, as(acme))).body as {
      apps: { name: string }[];
    };
    expect(acmeApps.apps.map((app) => app.name)).toEqual(['acme-web']);
    expect((await call('GET', '/v1/apps?org_slug=other', undefined, as(acme))).status).toBe(404);
    // The other organization sees none of it, not even that it exists.
    expect((await call('GET', '/v1/apps/acme-web', undefined, as(other))).status).toBe(404);
    expect((await call('GET', '/v1/apps/acme-web/machines', undefined, as(other))).status).toBe(
      404,
    );
    expect(
      (await call('POST', '/v1/apps/acme-web/machines', { config: hello }, as(other))).status,
    ).toBe(404);
    expect((await call('DELETE', '/v1/apps/acme-web', undefined, as(other))).status).toBe(404);
    expect((await call('GET', '/v1/apps/acme-web', undefined, `FlyV1 ${acme.token}`)).status).toBe(
      200,
    );
    // Minting is the operator's; a revoked token stops working.
    expect((await call('POST', '/v1/tokens', { org_slug: 'initech' }, as(acme))).status).toBe(401);
    expect((await call('DELETE', `/v1/tokens/${other.id}`)).body).toEqual({ ok: true, revoked: 1 });
    expect((await call('GET', '/v1/apps', undefined, as(other))).status).toBe(401);
    expect((await call('GET', '/v1/apps', undefined, 'Bearer fo1_made-up')).status).toBe(401);
  });

  it('serves its OpenAPI document', async () => {
    const document = (await (await fetch(`${fleet.api}/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, unknown>;
    };
    expect(document.openapi).toMatch(/^3\./);
    expect(Object.keys(document.paths)).toEqual(
      expect.arrayContaining([
        '/v1/apps',
        '/v1/apps/{app}/machines',
        '/v1/apps/{app}/machines/{id}/wait',
      ]),
    );
  });

  it('documents every error code it has', () => {
    expect(errorCodesInReadme(join(here, '..', 'README.md')).sort()).toEqual(
      Object.keys(FlapsErrors).sort(),
    );
  });
});
