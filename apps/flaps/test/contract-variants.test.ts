import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Answer, type Fleet, hello, operatorToken, startFleet } from './fleet.js';
import {
  fillTemplate,
  type OpenApiDocument,
  operationsOf,
  sampleBodies,
  shapeProblems,
} from './fly-shapes.js';

// What real Fly clients send, beside the canonical form the contract suite uses: each tolerance
// of the Machines API gets a call in each accepted form (fly-go's own where it has one), and an
// organization's token is refused everything of another organization. One real fleet serves
// the file.
describe('client variants and organizations', () => {
  let fleet: Fleet;
  let operations: string[];
  const ok = (answer: Answer, status = 200) => {
    expect(answer.status, JSON.stringify(answer.body)).toBe(status);
    return answer.body;
  };
  const refused = (answer: Answer, status: number, code: string) => {
    expect(answer.status, JSON.stringify(answer.body)).toBe(status);
    expect(shapeProblems('error', answer.body)).toEqual([]);
    expect(answer.body.code).toBe(code);
  };
  const started = async (app = 'variants') => {
    const created = ok(
      await fleet.call('POST', `/v1/apps/${app}/machines`, { region: 'ams', config: hello }),
    );
    ok(await fleet.call('GET', `/v1/apps/${app}/machines/${created.id}/wait?state=started`));
    return `/v1/apps/${app}/machines/${created.id as string}`;
  };

  beforeAll(async () => {
    fleet = await startFleet();
    const document = (await (await fetch(`${fleet.api}/openapi.json`)).json()) as OpenApiDocument;
    operations = operationsOf(document);
    ok(await fleet.call('POST', '/v1/apps', { app_name: 'variants' }), 201);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('takes the token under the Bearer and the FlyV1 scheme, for the operator and an org', async () => {
    const orgToken = await fleet.mintToken('schemes');
    for (const auth of [
      `Bearer ${operatorToken}`,
      `FlyV1 ${operatorToken}`,
      `bearer ${operatorToken}`,
      `Bearer ${orgToken}`,
      `FlyV1 ${orgToken}`,
    ]) {
      expect((await fleet.call('GET', '/v1/apps', undefined, { auth })).status, auth).toBe(200);
    }
    for (const auth of [`Basic ${operatorToken}`, operatorToken, 'FlyV1 fm2_not-ours', '']) {
      refused(
        await fleet.call('GET', '/v1/apps', undefined, { auth }),
        401,
        'FLAPS_ERR_UNAUTHORIZED',
      );
    }
  });

  it('creates an app from `name` (fly-go) or `app_name`, with fly-go`s empty network', async () => {
    const fromGo = ok(
      await fleet.call('POST', '/v1/apps?wait=true', {
        name: 'from-fly-go',
        org_slug: 'personal',
        network: '',
        app_role_id: '',
      }),
      201,
    );
    expect(fromGo).toMatchObject({ name: 'from-fly-go', network: 'default' });
    expect(ok(await fleet.call('POST', '/v1/apps', { app_name: 'from-docs' }), 201).name).toBe(
      'from-docs',
    );
  });

  it('accepts bodyless POSTs with a JSON content type, and without one', async () => {
    const path = await started();
    const empty = { rawBody: '', headers: { 'content-type': 'application/json' } };
    for (const action of ['cordon', 'uncordon', 'stop', 'start', 'restart', 'suspend', 'start']) {
      ok(await fleet.call('POST', `${path}/${action}`, undefined, empty));
    }
    for (const action of ['cordon', 'uncordon', 'stop', 'start']) {
      ok(await fleet.call('POST', `${path}/${action}`));
    }
    const lease = ok(await fleet.call('POST', `${path}/lease`, undefined, empty));
    ok(
      await fleet.call('DELETE', `${path}/lease`, undefined, {
        headers: { 'fly-machine-lease-nonce': lease.data.nonce },
      }),
    );
  });

  it("creates with fly-go's lease_ttl: the machine comes back leased, with the lease's nonce", async () => {
    const created = ok(
      await fleet.call('POST', '/v1/apps/variants/machines', {
        config: hello,
        region: 'ams',
        lease_ttl: 60,
        skip_secrets: false,
        skip_service_registration: false,
      }),
    );
    expect(created.nonce).toMatch(/^[0-9a-f]{12}$/);
    const path = `/v1/apps/variants/machines/${created.id}`;
    expect(ok(await fleet.call('GET', `${path}/lease`)).data.nonce).toBe(created.nonce);
    const nonce = { headers: { 'fly-machine-lease-nonce': created.nonce } };
    ok(await fleet.call('GET', `${path}/wait?state=started`));
    refused(await fleet.call('DELETE', `${path}?force=true`), 409, 'FLYD_ERR_LEASE_HELD');
    ok(await fleet.call('DELETE', `${path}?force=true`, undefined, nonce));
  });

  it('launches a config as fly-go marshals it (empty init, null force_instance_key, durations)', async () => {
    const config = {
      init: {},
      image: 'hello',
      guest: { cpu_kind: 'shared', cpus: 1, memory_mb: 256 },
      restart: {},
      env: { APP_ENV: 'test' },
      metadata: { fly_platform_version: 'v2', fly_process_group: 'app' },
      services: [
        {
          protocol: 'tcp',
          internal_port: 8080,
          autostop: true,
          autostart: true,
          min_machines_running: 0,
          ports: [
            { port: 80, handlers: ['http'], force_https: true },
            { port: 443, handlers: ['tls', 'http'] },
          ],
          force_instance_key: null,
        },
      ],
      checks: { alive: { port: 8080, type: 'tcp', interval: '15s', timeout: '2s' } },
      stop_config: { timeout: '5s', signal: 'SIGINT' },
      dns: {},
    };
    const created = ok(
      await fleet.call('POST', '/v1/apps/variants/machines', {
        config,
        region: 'ams',
        name: 'web-1',
        skip_launch: false,
        skip_service_registration: false,
        skip_secrets: false,
      }),
    );
    expect(created).toMatchObject({ name: 'web-1', config: { metadata: config.metadata } });
    const path = `/v1/apps/variants/machines/${created.id}`;
    expect(ok(await fleet.call('GET', `${path}/wait?state=started&timeout=30`)).state).toBe(
      'started',
    );
    ok(await fleet.call('DELETE', `${path}?force=true`));
  });

  it("runs fly-go's exec body: one command line in `cmd`, a timeout in seconds", async () => {
    const path = await started();
    const ran = ok(
      await fleet.call('POST', `${path}/exec`, { cmd: 'echo $FLY_MACHINE_ID', timeout: 5 }),
    );
    expect(ran).toMatchObject({ exit_code: 0, stdout: `${path.split('/').at(-1)}\n` });
  });

  it('destroys a started machine with ?kill=true or ?force=true, not without', async () => {
    for (const flag of ['kill', 'force']) {
      const path = await started();
      refused(await fleet.call('DELETE', `${path}?${flag}=false`), 412, 'FLYD_ERR_PRECONDITION');
      expect(ok(await fleet.call('DELETE', `${path}?${flag}=true`))).toEqual({ ok: true });
    }
  });

  it('takes a lease ttl in the query or the body, and refreshes it by the nonce header', async () => {
    const path = await started();
    const nowSeconds = () => Date.now() / 1000;
    const short = ok(await fleet.call('POST', `${path}/lease?ttl=100`)).data;
    expect(short.expires_at - nowSeconds()).toBeGreaterThan(50);
    expect(short.expires_at - nowSeconds()).toBeLessThan(150);
    const nonce = { headers: { 'fly-machine-lease-nonce': short.nonce } };
    // fly-go's RefreshLease: `?ttl=` with the nonce, no body.
    const refreshed = ok(await fleet.call('POST', `${path}/lease?ttl=3000`, undefined, nonce)).data;
    expect(refreshed.nonce).toBe(short.nonce);
    expect(refreshed.expires_at - nowSeconds()).toBeGreaterThan(2500);
    ok(await fleet.call('DELETE', `${path}/lease`, undefined, nonce));
    const fromBody = ok(await fleet.call('POST', `${path}/lease`, { ttl: 3000 })).data;
    expect(fromBody.expires_at - nowSeconds()).toBeGreaterThan(2500);
    expect(fromBody.nonce).not.toBe(short.nonce);
    ok(
      await fleet.call('DELETE', `${path}/lease`, undefined, {
        headers: { 'fly-machine-lease-nonce': fromBody.nonce },
      }),
    );
  });

  it('lets a lease lapse at its ttl: then another caller takes it with a new nonce', async () => {
    const path = await started();
    const first = ok(await fleet.call('POST', `${path}/lease?ttl=1`)).data;
    // Expiry is in whole seconds: within ~2 s the lease is gone; poll, bounded.
    let next: Answer | undefined;
    for (let attempt = 0; attempt < 50; attempt++) {
      next = await fleet.call('POST', `${path}/lease?ttl=30`);
      if (next.status === 200) break;
      refused(next, 409, 'FLYD_ERR_LEASE_HELD');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(next?.status).toBe(200);
    expect(next?.body.data.nonce).not.toBe(first.nonce);
  });

  it('guards a leased machine: without the nonce 409 aborted, with it the call goes through', async () => {
    const path = await started();
    const lease = ok(await fleet.call('POST', `${path}/lease?ttl=120`)).data;
    const nonce = { headers: { 'fly-machine-lease-nonce': lease.nonce } };
    const wrong = { headers: { 'fly-machine-lease-nonce': 'ffffffffffff' } };
    const guarded: [string, string, unknown][] = [
      ['POST', `${path}/stop`, undefined],
      ['POST', `${path}/start`, undefined],
      ['POST', `${path}/restart`, undefined],
      ['POST', `${path}/signal`, { signal: 'SIGWINCH' }],
      ['POST', path, { config: { ...hello, env: { LEASED: '1' } } }],
      ['POST', `${path}/metadata/owner`, { value: 'me' }],
      ['DELETE', `${path}?force=true`, undefined],
    ];
    for (const [method, target, body] of guarded) {
      for (const options of [{}, wrong]) {
        const answer = await fleet.call(method, target, body, options);
        refused(answer, 409, 'FLYD_ERR_LEASE_HELD');
        expect(answer.body.error).toMatch(/^aborted: /);
      }
    }
    for (const [method, target, body] of guarded) {
      expect(
        (await fleet.call(method, target, body, nonce)).status,
        `${method} ${target}`,
      ).toBeLessThan(300);
    }
  });

  it('takes a restart timeout in the query or the body, as seconds or Go-style', async () => {
    const path = await started();
    // fly-go's Restart: `?force_stop=false&timeout=10s&signal=SIGTERM`, no body.
    ok(await fleet.call('POST', `${path}/restart?force_stop=false&timeout=10s&signal=SIGTERM`));
    ok(await fleet.call('POST', `${path}/restart?timeout=3`));
    ok(await fleet.call('POST', `${path}/restart`, { timeout: 3 }));
    ok(await fleet.call('POST', `${path}/restart`, { timeout: '3s', signal: 'TERM' }));
    // Go's time.Duration.String() forms, as fly-go prints them into the query.
    for (const timeout of ['500ms', '1.5s', '1m0s', '0m2s']) {
      ok(await fleet.call('POST', `${path}/restart?timeout=${timeout}`));
    }
    refused(await fleet.call('POST', `${path}/restart?timeout=soon`), 400, 'FLAPS_ERR_BAD_REQUEST');
    // stop's timeout and signal take the same forms.
    ok(await fleet.call('POST', `${path}/stop`, { signal: 15, timeout: '5s' }));
    ok(await fleet.call('POST', `${path}/start`));
    ok(await fleet.call('POST', `${path}/stop`, { signal: 'TERM', timeout: 5 }));
    ok(await fleet.call('POST', `${path}/start`));
    // fly-go's StopMachineInput: its id, and `"timeout": "0s"` when none was set.
    ok(await fleet.call('POST', `${path}/stop`, { id: path.split('/').at(-1), timeout: '0s' }));
  });

  it('takes a signal as a name, a short name or a number', async () => {
    const path = await started();
    // SIGWINCH (28 on Linux) is ignored by the machine, which keeps running.
    for (const signal of ['SIGWINCH', 'WINCH', 'winch', 28, '28']) {
      expect(ok(await fleet.call('POST', `${path}/signal`, { signal })), String(signal)).toEqual({
        ok: true,
      });
    }
    for (const signal of ['SIGNOPE', 999, '']) {
      refused(await fleet.call('POST', `${path}/signal`, { signal }), 400, 'FLAPS_ERR_BAD_REQUEST');
    }
  });

  it('waits as fly-go asks: repeated state, version or instance_id, timeout capped at 60 s', async () => {
    const path = await started();
    const machine = ok(await fleet.call('GET', path));
    const reached = ok(
      await fleet.call('GET', `${path}/wait?state=started&state=stopped&timeout=60`),
    );
    expect(reached).toEqual({ ok: true, state: 'started', version: machine.instance_id });
    // Comma-separated too, and flyctl's default `settled` (any resting state).
    ok(await fleet.call('GET', `${path}/wait?state=stopped,started`));
    expect(ok(await fleet.call('GET', `${path}/wait?state=settled`)).state).toBe('started');
    ok(
      await fleet.call(
        'GET',
        `${path}/wait?version=${machine.instance_id}&timeout=60&state=started`,
      ),
    );
    ok(await fleet.call('GET', `${path}/wait?instance_id=${machine.instance_id}&state=started`));
    // Over 60 s is capped, not refused: the machine is started, so this answers at once.
    ok(await fleet.call('GET', `${path}/wait?state=started&timeout=600`));
    ok(await fleet.call('GET', `${path}/wait?state=started&timeout=5s`));
    refused(
      await fleet.call('GET', `${path}/wait?state=started&state=asleep`),
      400,
      'FLAPS_ERR_BAD_REQUEST',
    );
  });

  it("dry-runs a placement from fly-go's body (count 0, compute null, no app)", async () => {
    const placed = ok(
      await fleet.call('POST', '/v1/platform/placements', {
        compute: null,
        region: '',
        count: 0,
        volume_name: '',
        volume_size_bytes: 0,
        weights: null,
        org_slug: 'personal',
      }),
    );
    expect(placed.regions).toEqual([{ region: 'ams', count: 1 }]);
  });

  it("refuses an organization's token everything of another organization", async () => {
    const acme = { auth: `Bearer ${await fleet.mintToken('acme')}` };
    const globex = { auth: `FlyV1 ${await fleet.mintToken('globex')}` };
    ok(await fleet.call('POST', '/v1/apps', { app_name: 'acme-web' }, acme), 201);
    ok(await fleet.call('POST', '/v1/apps', { app_name: 'globex-web' }, globex), 201);
    const theirs = ok(
      await fleet.call(
        'POST',
        '/v1/apps/globex-web/machines',
        { config: hello, skip_launch: true },
        globex,
      ),
    );
    // Listing: only its own apps; naming the other organization is refused.
    const listed = ok(await fleet.call('GET', '/v1/apps', undefined, acme));
    expect(listed.apps.map((app: { name: string }) => app.name)).toEqual(['acme-web']);
    refused(
      await fleet.call('GET', '/v1/apps?org_slug=globex', undefined, acme),
      404,
      'FLAPS_ERR_ORG_NOT_FOUND',
    );
    refused(
      await fleet.call('POST', '/v1/apps', { app_name: 'planted', org_slug: 'globex' }, acme),
      404,
      'FLAPS_ERR_ORG_NOT_FOUND',
    );
    // Every operation on the other organization's app and its machine: that app does not exist.
    const appScoped = operations.filter((operation) => operation.includes('{app}'));
    expect(appScoped.length).toBeGreaterThan(20);
    for (const operation of appScoped) {
      const [method, template] = operation.split(' ') as [string, string];
      const target = fillTemplate(template, 'globex-web', theirs.id);
      const answer = await fleet.call(method, target, sampleBodies[operation], acme);
      expect(answer.status, `${operation}: ${JSON.stringify(answer.body)}`).toBe(404);
      expect(answer.body).toMatchObject({
        code: 'FLAPS_ERR_APP_NOT_FOUND',
        error: 'app not found',
      });
    }
    // Its machine through one's own app is no better, nor its machine counts in a placement.
    refused(
      await fleet.call('GET', `/v1/apps/acme-web/machines/${theirs.id}`, undefined, acme),
      404,
      'FLAPS_ERR_MACHINE_NOT_FOUND',
    );
    refused(
      await fleet.call('POST', '/v1/platform/placements', { app: 'globex-web' }, acme),
      404,
      'FLAPS_ERR_APP_NOT_FOUND',
    );
    // Nothing of it changed: the owner and the operator still see the app and its machine.
    ok(await fleet.call('GET', `/v1/apps/globex-web/machines/${theirs.id}`, undefined, globex));
    ok(await fleet.call('GET', '/v1/apps/globex-web'));
  });
});
