import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CorrosionClient } from '@fleet/corrosion-client';
import { present } from '@fleet/service/invariant';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Answer, type CallOptions, type Fleet, hello, startFleet } from './fleet.js';
import {
  documentedProblems,
  fillTemplate,
  type OpenApiDocument,
  operationResponses,
  operationsOf,
  patterns,
  sampleBodies,
  shapeProblems,
} from './fly-shapes.js';

// The contract of every endpoint: the success status and the shape Fly's clients decode
// (src/fly-shapes.ts, from fly-go's types, as /openapi.json documents it), and each error status with Fly's error body. One real
// fleet (corrosion, one flyd, flaps) serves the file; every operation of /openapi.json must be
// called here with a success (the last test checks it).
interface LogEntry {
  id: string;
  attributes: { message: string; instance: string };
}

describe('the Machines API contract', () => {
  let fleet: Fleet;
  let document: OpenApiDocument;
  let operations: string[];
  const exercised = new Set<string>();

  /** The OpenAPI operation (`METHOD /template`) a concrete call is for. */
  const operationOf = (method: string, path: string) => {
    const bare = present(path.split('?')[0], 'path.split(?)[0]');
    const matches = operations.filter((operation) => {
      const [verb, template] = operation.split(' ') as [string, string];
      const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`);
      return verb === method && pattern.test(bare);
    });
    // The most literal template wins (`/machines/{id}/wait` over `/machines/{id}/{x}`).
    return matches.sort((a, b) => b.split('{').length - a.split('{').length).at(-1);
  };

  /** Calls, then checks the status and the answer's shape; records the operation as covered. */
  const expectShape = async (
    status: number,
    method: string,
    path: string,
    body?: unknown,
    options?: CallOptions,
  ): Promise<Answer> => {
    const answer = await fleet.call(method, path, body, options);
    expect(answer.status, `${method} ${path}: ${JSON.stringify(answer.body)}`).toBe(status);
    const operation = operationOf(method, path);
    expect(operation, `${method} ${path} is in /openapi.json`).toBeDefined();
    expect(
      operationResponses[present(operation, 'operation')],
      `${operation} in operationResponses`,
    ).toBeDefined();
    expect(
      documentedProblems(document, present(operation, 'operation'), status, answer.body),
      operation,
    ).toEqual([]);
    exercised.add(present(operation, 'operation'));
    return answer;
  };

  /** Calls, then checks for an error status, Fly's error body, and our code. */
  const expectError = async (
    status: number,
    code: string,
    method: string,
    path: string,
    body?: unknown,
    options?: CallOptions,
  ): Promise<Answer> => {
    const answer = await fleet.call(method, path, body, options);
    expect(answer.status, `${method} ${path}: ${JSON.stringify(answer.body)}`).toBe(status);
    // Against the error response the document declares (`4XX`, `5XX`), or Fly's error shape.
    const operation = operationOf(method, path);
    const problems = operation
      ? documentedProblems(document, operation, `${Math.floor(status / 100)}XX`, answer.body)
      : shapeProblems('error', answer.body);
    expect(problems, `${method} ${path} error body`).toEqual([]);
    expect(answer.body.code).toBe(code);
    return answer;
  };

  const started = async (app: string) => {
    const created = await expectShape(200, 'POST', `/v1/apps/${app}/machines`, {
      region: 'ams',
      config: hello,
    });
    const id = created.body.id as string;
    await expectShape(200, 'GET', `/v1/apps/${app}/machines/${id}/wait?state=started&timeout=30`);
    return id;
  };

  beforeAll(async () => {
    // Two workers in ams: a migrate needs somewhere to go.
    fleet = await startFleet({
      workers: [
        { hostId: 'w1', region: 'ams' },
        { hostId: 'w2', region: 'ams' },
      ],
    });
    document = (await (await fetch(`${fleet.api}/openapi.json`)).json()) as OpenApiDocument;
    operations = operationsOf(document);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('apps: create (201), get, list by org and delete (202) in the App shape', async () => {
    const created = await expectShape(201, 'POST', '/v1/apps', {
      app_name: 'contract',
      org_slug: 'personal',
    });
    expect(created.body).toMatchObject({ name: 'contract', organization: { slug: 'personal' } });
    const taken = await expectError(422, 'FLAPS_ERR_NAME_TAKEN', 'POST', '/v1/apps', {
      app_name: 'contract',
    });
    expect(taken.body).toMatchObject({ status: 'name_taken', error: /^name_taken: / });
    await expectError(400, 'FLAPS_ERR_BAD_REQUEST', 'POST', '/v1/apps', { app_name: 'Bad_Name' });
    await expectError(400, 'FLAPS_ERR_BAD_REQUEST', 'POST', '/v1/apps', { org_slug: 'personal' });
    await expectError(400, 'BAD_REQUEST', 'POST', '/v1/apps', { app_name: 7 });
    // JSON sent as text (curl -d without a content-type of JSON) is refused for its type.
    const text = await expectError(
      415,
      'FST_ERR_CTP_INVALID_MEDIA_TYPE',
      'POST',
      '/v1/apps',
      undefined,
      {
        rawBody: '{"app_name":"texty"}',
        headers: { 'content-type': 'text/plain' },
      },
    );
    expect(text.body.error).toMatch(/^invalid_argument: .*text\/plain/);
    await expectShape(200, 'GET', '/v1/apps/contract');
    const missing = await expectError(404, 'FLAPS_ERR_APP_NOT_FOUND', 'GET', '/v1/apps/nope');
    // fly-go's AppNameAvailable compares this text verbatim.
    expect(missing.body.error).toBe('app not found');
    const listed = await expectShape(200, 'GET', '/v1/apps?org_slug=personal');
    expect(listed.body.total_apps).toBe(listed.body.apps.length);
    expect(listed.body.apps.map((app: { name: string }) => app.name)).toContain('contract');
    await expectShape(201, 'POST', '/v1/apps', { app_name: 'doomed' });
    await expectShape(202, 'DELETE', '/v1/apps/doomed');
    await expectError(404, 'FLAPS_ERR_APP_NOT_FOUND', 'DELETE', '/v1/apps/doomed');
  });

  it('tokens: the operator mints (201) and revokes organization tokens; others get 401', async () => {
    const minted = await expectShape(201, 'POST', '/v1/tokens', { org_slug: 'minted', name: 'ci' });
    await expectError(400, 'BAD_REQUEST', 'POST', '/v1/tokens', { name: 'no org' });
    const asOrg = { auth: `Bearer ${minted.body.token}` };
    await expectError(
      401,
      'FLAPS_ERR_UNAUTHORIZED',
      'POST',
      '/v1/tokens',
      { org_slug: 'x' },
      asOrg,
    );
    await expectError(
      401,
      'FLAPS_ERR_UNAUTHORIZED',
      'DELETE',
      `/v1/tokens/${minted.body.id}`,
      {},
      asOrg,
    );
    await expectError(400, 'FLAPS_ERR_BAD_REQUEST', 'DELETE', '/v1/tokens/not-hex');
    const revoked = await expectShape(200, 'DELETE', `/v1/tokens/${minted.body.id}`);
    expect(revoked.body).toEqual({ ok: true, revoked: 1 });
  });

  it('platform: regions, and placements with insufficient_capacity where there is no room', async () => {
    const regions = await expectShape(200, 'GET', '/v1/platform/regions');
    expect(regions.body.regions).toContainEqual(expect.objectContaining({ code: 'ams' }));
    const placed = await expectShape(200, 'POST', '/v1/platform/placements', {
      app: 'contract',
      region: 'ams',
      count: 2,
    });
    expect(placed.body.regions).toEqual([{ region: 'ams', count: 2 }]);
    const full = await expectError(
      412,
      'FLAPS_ERR_NO_CAPACITY',
      'POST',
      '/v1/platform/placements',
      {
        app: 'contract',
        region: 'syd',
      },
    );
    expect(full.body).toMatchObject({ status: 'insufficient_capacity' });
    await expectError(400, 'BAD_REQUEST', 'POST', '/v1/platform/placements', { count: -1 });
  });

  it('machines: create answers at once, then get, list, events and wait in Fly shapes', async () => {
    const created = await expectShape(200, 'POST', '/v1/apps/contract/machines', {
      region: 'ams',
      config: hello,
    });
    // Answered at once, as created (the launch goes on): the state and events of that moment.
    expect(created.body.state).toBe('created');
    expect(created.body.events[0]).toMatchObject({ type: 'launch', status: 'created' });
    const id = created.body.id as string;
    expect(id).toMatch(new RegExp(patterns.machineId));
    const waited = await expectShape(
      200,
      'GET',
      `/v1/apps/contract/machines/${id}/wait?state=started&timeout=30`,
    );
    expect(waited.body.state).toBe('started');
    const machine = (await expectShape(200, 'GET', `/v1/apps/contract/machines/${id}`)).body;
    expect(machine).toMatchObject({ id, state: 'started', region: 'ams', checks: [] });
    expect(machine.instance_id).toBe(created.body.instance_id);
    const times = (machine.events as { timestamp: number }[]).map((event) => event.timestamp);
    expect(times).toEqual([...times].sort((a, b) => b - a)); // newest first
    const listed = await expectShape(200, 'GET', '/v1/apps/contract/machines');
    // Unnamed, a machine's name is its id (as flyd defaults it); the list carries its recent events.
    const inList = (listed.body as { id: string; events: unknown[] }[]).find(
      (one) => one.id === id,
    );
    expect(inList).toMatchObject({ id, name: id, state: 'started' });
    expect(inList?.events[0]).toMatchObject({ type: 'start', status: 'started' });
    // Fly's `state` filter: comma-separated or repeated; a state Fly does not name is a 400.
    const ids = (path: string) =>
      expectShape(200, 'GET', path).then((answer) =>
        (answer.body as { id: string }[]).map((one) => one.id),
      );
    const base = '/v1/apps/contract/machines';
    expect(await ids(`${base}?state=started`)).toContain(id);
    expect(await ids(`${base}?state=stopped,started`)).toContain(id);
    expect(await ids(`${base}?state=stopped&state=started`)).toContain(id);
    expect(await ids(`${base}?state=stopped`)).not.toContain(id);
    const misspelt = await expectError(
      400,
      'FLAPS_ERR_BAD_REQUEST',
      'GET',
      `${base}?state=strated`,
    );
    expect(misspelt.body.error).toMatch(/unknown machine state strated \(a comma-separated list/);
    // A named machine lists with its name (corrosion's `machines.name`, published by flyd).
    const named = await expectShape(200, 'POST', '/v1/apps/contract/machines', {
      name: 'contract-web-1',
      region: 'ams',
      config: hello,
      skip_launch: true,
    });
    expect(named.body.name).toBe('contract-web-1');
    const withNamed = await expectShape(200, 'GET', '/v1/apps/contract/machines');
    expect(withNamed.body).toContainEqual(
      expect.objectContaining({ id: named.body.id, name: 'contract-web-1' }),
    );
    await expectShape(200, 'DELETE', `/v1/apps/contract/machines/${named.body.id}`);
    const events = await expectShape(200, 'GET', `/v1/apps/contract/machines/${id}/events`);
    expect(events.body[0].status).toBe('started');
    // Errors: bad input, no such app or machine, no room, a wait that runs out or names another version.
    await expectError(400, 'FLAPS_ERR_BAD_CONFIG', 'POST', '/v1/apps/contract/machines', {
      region: 'ams',
    });
    await expectError(404, 'FLAPS_ERR_APP_NOT_FOUND', 'POST', '/v1/apps/nope/machines', {
      config: hello,
    });
    const full = await expectError(
      412,
      'FLAPS_ERR_NO_CAPACITY',
      'POST',
      '/v1/apps/contract/machines',
      {
        region: 'syd',
        config: hello,
      },
    );
    expect(full.body.status).toBe('insufficient_capacity');
    await expectError(400, 'FLYD_ERR_BAD_CONFIG', 'POST', '/v1/apps/contract/machines', {
      config: { image: 'no-such-image' },
    });
    const unknown = await expectError(
      404,
      'FLAPS_ERR_MACHINE_NOT_FOUND',
      'GET',
      '/v1/apps/contract/machines/ffffffffffffff',
    );
    expect(unknown.body.error).toMatch(/^not_found: /);
    await expectError(
      400,
      'FLAPS_ERR_BAD_REQUEST',
      'GET',
      `/v1/apps/contract/machines/${id}/wait?state=asleep`,
    );
    await expectError(
      400,
      'FLAPS_ERR_BAD_REQUEST',
      'GET',
      `/v1/apps/contract/machines/${id}/wait?timeout=soon`,
    );
    const late = await expectError(
      408,
      'FLYD_ERR_TIMEOUT',
      'GET',
      `/v1/apps/contract/machines/${id}/wait?state=stopped&timeout=1`,
    );
    expect(late.body.error).toMatch(/^deadline_exceeded: /);
    const otherVersion = await expectError(
      412,
      'FLAPS_ERR_WRONG_VERSION',
      'GET',
      `/v1/apps/contract/machines/${id}/wait?instance_id=01ARZ3NDEKTSV4RRFFQ69G5FAV`,
    );
    expect(otherVersion.body.error).toMatch(/^failed_precondition: /);
  });

  /** Bad machine configs (the cases of the hardening issues), each with the field its 400 names. */
  const badConfigs: [string, unknown, string][] = [
    [
      'memory as a string',
      { ...hello, guest: { memory_mb: '512' } },
      'config.guest.memory_mb must be an integer >= 256',
    ],
    [
      'negative memory',
      { ...hello, guest: { memory_mb: -5 } },
      'config.guest.memory_mb must be an integer >= 256',
    ],
    [
      '50 GB on a shared CPU',
      { ...hello, guest: { memory_mb: 51_200 } },
      'config.guest.memory_mb must be an integer >= 256 and <= 2048',
    ],
    ['cpus as a word', { ...hello, guest: { cpus: 'two' } }, 'config.guest.cpus must be'],
    [
      'unknown cpu kind',
      { ...hello, guest: { cpu_kind: 'turbo' } },
      'config.guest.cpu_kind must be one of',
    ],
    ['env name with =', { ...hello, env: { 'A=B': '1' } }, 'config.env name "A=B" must be'],
    ['env value with NUL', { ...hello, env: { A: 'a\u0000b' } }, 'config.env.A must be'],
    ['env value a number', { ...hello, env: { PORT: 8080 } }, 'config.env.PORT must be a string'],
    [
      'file path with a trailing slash',
      { ...hello, files: [{ guest_path: '/server.mjs/', raw_value: '' }] },
      'config.files[0].guest_path must be an absolute file path',
    ],
    [
      'restart policy sometimes',
      { ...hello, restart: { policy: 'sometimes' } },
      'config.restart.policy must be one of',
    ],
    [
      'max_retries -1',
      { ...hello, restart: { max_retries: -1 } },
      'config.restart.max_retries must be an integer >= 0',
    ],
    [
      'port 0',
      { ...hello, services: [{ internal_port: 0 }] },
      'config.services[0].internal_port must be an integer >= 1',
    ],
    [
      'unknown handler',
      {
        ...hello,
        ...{ services: [{ internal_port: 8080, ports: [{ port: 80, handlers: ['smtp'] }] }] },
      },
      'config.services[0].ports[0].handlers[0] must be one of',
    ],
    [
      'check type',
      { ...hello, checks: { alive: { type: 'udp', port: 8080 } } },
      'config.checks.alive.type must be one of',
    ],
    [
      'stop signal',
      { ...hello, stop_config: { signal: 'SIGNOPE' } },
      'config.stop_config.signal must be',
    ],
    [
      'two mounts',
      {
        ...hello,
        ...{
          mounts: [
            { volume: 'vol_0123456789abcdef', path: '/a' },
            { volume: 'vol_0123456789abcdeg', path: '/b' },
          ],
        },
      },
      'config.mounts must be',
    ],
    ['no image', { ...hello, image: undefined }, 'config.image is required'],
    ['config not an object', 'hello', 'config must be an object'],
  ];
  /** The app's machines as flaps lists them and as each worker holds them (destroyed ones too). */
  const machinesEverywhere = async (app: string) => {
    const listed = await fleet.call('GET', `/v1/apps/${app}/machines?include_deleted=true`);
    const held = await Promise.all(
      ['w1', 'w2'].map((host) =>
        fleet.flyd(host, 'GET', `/v1/machines?app=${app}&include_deleted=true`),
      ),
    );
    return [listed, ...held].map((answer) => {
      expect(answer.status).toBe(200);
      return (answer.body as { id: string }[]).map((machine) => machine.id).sort();
    });
  };

  // Bad bodies run through the contract too: each bad config is refused by flaps, before
  // placement, with 400 in Fly's error shape (`invalid_argument: <field> must be ...`, our code
  // beside it) naming the field, as the OpenAPI document declares; nothing is created anywhere.
  it('machines: a bad config is refused with 400 naming the field, and nothing is created', async () => {
    const before = await machinesEverywhere('contract');
    for (const [what, config, message] of badConfigs) {
      const refused = await expectError(
        400,
        'FLAPS_ERR_BAD_CONFIG',
        'POST',
        '/v1/apps/contract/machines',
        { region: 'ams', config },
      );
      const error = refused.body.error as string;
      expect(error.startsWith(`invalid_argument: ${message}`), `${what}: ${error}`).toBe(true);
    }
    for (const name of ['a/b', 'web\n1', 'x;rm -rf /', '$(id)']) {
      const refused = await expectError(400, 'BAD_REQUEST', 'POST', '/v1/apps/contract/machines', {
        name,
        config: hello,
      });
      expect(refused.body.error).toMatch(/^invalid_argument: name must be a name of at most 63/);
    }
    expect(await machinesEverywhere('contract')).toEqual(before);
  });

  it('machines: a bad config in an update is refused the same way, and the machine is unchanged', async () => {
    const id = await started('contract');
    const path = `/v1/apps/contract/machines/${id}`;
    const { instance_id } = (await expectShape(200, 'GET', path)).body;
    for (const [what, config, message] of badConfigs) {
      const refused = await expectError(400, 'FLAPS_ERR_BAD_CONFIG', 'POST', path, { config });
      const error = refused.body.error as string;
      expect(error.startsWith(`invalid_argument: ${message}`), `${what}: ${error}`).toBe(true);
    }
    const after = (await expectShape(200, 'GET', path)).body;
    expect(after).toMatchObject({ state: 'started', instance_id, config: hello });
    expect((await expectShape(200, 'GET', `${path}/versions`)).body).toHaveLength(1);
    await expectShape(200, 'DELETE', `${path}?force=true`);
  });

  // The other routes that take a body refuse bad ones the same way: 400, a stable code, and the
  // field named in the message; each row is one kind of mistake (type, range, enum, required).
  it('every other route refuses a bad body with 400 naming the field', async () => {
    const id = await started('contract');
    const machine = `/v1/apps/contract/machines/${id}`;
    const rows: [string, string, unknown, string, string][] = [
      ['POST', '/v1/apps', { app_name: 7 }, 'BAD_REQUEST', 'app_name'],
      ['POST', '/v1/apps', { org_slug: 'personal' }, 'FLAPS_ERR_BAD_REQUEST', 'app_name'],
      ['POST', '/v1/platform/placements', { count: -1 }, 'BAD_REQUEST', 'count'],
      [
        'POST',
        '/v1/platform/placements',
        { compute: { memory_mb: '512' } },
        'BAD_REQUEST',
        'compute.memory_mb must be an integer',
      ],
      [
        'POST',
        '/v1/platform/placements',
        { compute: { memory_mb: -5 } },
        'BAD_REQUEST',
        'compute.memory_mb must be an integer >= 256',
      ],
      [
        'POST',
        '/v1/platform/placements',
        { compute: { cpu_kind: 'turbo' } },
        'BAD_REQUEST',
        'compute.cpu_kind must be one of',
      ],
      ['POST', `${machine}/stop`, { signal: 'SIGNOPE' }, 'FLAPS_ERR_BAD_REQUEST', 'signal'],
      ['POST', `${machine}/stop`, { timeout: 'soon' }, 'FLAPS_ERR_BAD_REQUEST', 'timeout'],
      ['POST', `${machine}/signal`, {}, 'FLAPS_ERR_BAD_REQUEST', 'signal is required'],
      ['POST', `${machine}/exec`, { command: [] }, 'BAD_REQUEST', 'command'],
      ['POST', `${machine}/exec`, { command: ['true'], timeout: 601 }, 'BAD_REQUEST', 'timeout'],
      ['POST', `${machine}/metadata/team`, { value: 7 }, 'BAD_REQUEST', 'value'],
      ['POST', `${machine}/lease`, { ttl: 100_000 }, 'BAD_REQUEST', 'ttl'],
      ['POST', `${machine}/migrate`, { host_id: '' }, 'BAD_REQUEST', 'host_id'],
      ['POST', '/v1/apps/contract/volumes', { region: 'ams' }, 'BAD_REQUEST', 'name'],
      [
        'POST',
        '/v1/apps/contract/volumes',
        { name: 'data', region: 'ams', compute: { memory_mb: '512' } },
        'BAD_REQUEST',
        'compute.memory_mb must be an integer',
      ],
      [
        'POST',
        '/v1/apps/contract/volumes',
        { name: 'data', region: 'ams', size_gb: -1 },
        'BAD_REQUEST',
        'size_gb',
      ],
    ];
    for (const [method, path, body, code, field] of rows) {
      const refused = await expectError(400, code, method, path, body);
      expect(refused.body.error, `${method} ${path} ${JSON.stringify(body)}`).toContain(field);
    }
    expect((await expectShape(200, 'GET', machine)).body.state).toBe('started');
    await expectShape(200, 'DELETE', `${machine}?force=true`);
  });

  it('documents the machine config schema in /openapi.json', () => {
    const create = document.paths['/v1/apps/{app}/machines']?.post as unknown as {
      requestBody: { content: Record<string, { schema: { properties: Record<string, unknown> } }> };
    };
    const body = present(
      create.requestBody.content['application/json'],
      'create.requestBody.content[application/json]',
    ).schema;
    expect(body.properties.config).toMatchObject({
      required: ['image'],
      properties: { guest: { properties: { memory_mb: { type: 'integer', minimum: 256 } } } },
    });
    expect(body.properties.name).toMatchObject({ maxLength: 63 });
  });

  it('machine operations: stop, start, restart, signal, suspend, update, metadata, cordon, ps, exec, versions, logs', async () => {
    const id = await started('contract');
    const path = `/v1/apps/contract/machines/${id}`;
    await expectShape(200, 'POST', `${path}/stop`, { timeout: '5s' });
    await expectError(412, 'FLYD_ERR_PRECONDITION', 'GET', `${path}/ps`);
    await expectError(412, 'FLYD_ERR_PRECONDITION', 'POST', `${path}/exec`, { command: ['true'] });
    await expectError(412, 'FLYD_ERR_PRECONDITION', 'POST', `${path}/signal`, {
      signal: 'SIGWINCH',
    });
    const startedAgain = await expectShape(200, 'POST', `${path}/start`);
    expect(startedAgain.body.previous_state).toBe('stopped');
    await expectShape(200, 'POST', `${path}/restart?timeout=5s`);
    await expectShape(200, 'POST', `${path}/signal`, { signal: 'SIGWINCH' });
    await expectError(400, 'FLAPS_ERR_BAD_REQUEST', 'POST', `${path}/signal`, {
      signal: 'SIGNOPE',
    });
    await expectError(400, 'FLAPS_ERR_BAD_REQUEST', 'POST', `${path}/signal`, {});
    const updated = await expectShape(200, 'POST', path, { config: { ...hello, env: { V: '2' } } });
    expect(updated.body.config.env).toEqual({ V: '2' });
    expect(updated.body.instance_id).not.toBe(startedAgain.body.instance_id);
    await expectError(400, 'FLAPS_ERR_BAD_CONFIG', 'POST', path, { region: 'ams' });
    await expectShape(
      200,
      'GET',
      `${path}/wait?instance_id=${updated.body.instance_id}&state=started`,
    );
    const versions = await expectShape(200, 'GET', `${path}/versions`);
    expect(versions.body[0].version).toBe(updated.body.instance_id);
    await expectShape(204, 'POST', `${path}/metadata/team`, { value: 'web' });
    await expectError(400, 'BAD_REQUEST', 'POST', `${path}/metadata/team`, { value: 7 });
    expect((await expectShape(200, 'GET', `${path}/metadata`)).body).toEqual({ team: 'web' });
    await expectShape(204, 'DELETE', `${path}/metadata/team`);
    await expectShape(200, 'POST', `${path}/cordon`);
    expect((await fleet.call('GET', path)).body.cordoned).toBe(true);
    await expectShape(200, 'POST', `${path}/uncordon`);
    await expectShape(200, 'GET', `${path}/ps`);
    const ran = await expectShape(200, 'POST', `${path}/exec`, { command: ['printenv', 'V'] });
    expect(ran.body).toMatchObject({ stdout: '2\n', exit_code: 0 });
    await expectError(400, 'BAD_REQUEST', 'POST', `${path}/exec`, { command: [] });
    // Its logs, app-wide and its own, in Fly's logs page; the machine's first line is there.
    const said = `hello: machine ${id} of contract listening`;
    for (let attempt = 0; attempt < 100; attempt++) {
      const page = await fleet.call('GET', '/v1/apps/contract/logs?limit=1000');
      if (page.body.data.some((entry: LogEntry) => entry.attributes.message.startsWith(said)))
        break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const appLogs = await expectShape(200, 'GET', '/v1/apps/contract/logs?limit=1000');
    const own = await expectShape(200, 'GET', `${path}/logs`);
    for (const page of [appLogs, own])
      expect(page.body.data).toContainEqual(
        expect.objectContaining({
          attributes: expect.objectContaining({ instance: id, region: 'ams', level: 'info' }),
        }),
      );
    expect(own.body.data.every((entry: LogEntry) => entry.attributes.instance === id)).toBe(true);
    const after = await expectShape(
      200,
      'GET',
      `${path}/logs?next_token=${own.body.meta.next_token}`,
    );
    expect(after.body.data.map((entry: LogEntry) => entry.id)).not.toContain(own.body.data[0].id);
    await expectError(400, 'FLAPS_ERR_BAD_REQUEST', 'GET', `${path}/logs?next_token=nope`);
    await expectError(400, 'BAD_REQUEST', 'GET', `${path}/logs?limit=0`);
    await expectError(
      404,
      'FLAPS_ERR_MACHINE_NOT_FOUND',
      'GET',
      '/v1/apps/contract/machines/0123456789abcd/logs',
    );
    await expectShape(200, 'POST', `${path}/suspend`);
    await expectShape(200, 'GET', `${path}/wait?state=suspended&timeout=10`);
    expect((await expectShape(200, 'POST', `${path}/start`)).body.previous_state).toBe('suspended');
  });

  it("health checks: a machine's `checks` carry name, status, output and an RFC 3339 time", async () => {
    const created = await expectShape(200, 'POST', '/v1/apps/contract/machines', {
      region: 'ams',
      config: { ...hello, checks: { alive: { type: 'tcp', port: 8080, interval: '1s' } } },
    });
    const path = `/v1/apps/contract/machines/${created.body.id}`;
    await expectShape(200, 'GET', `${path}/wait?state=started&timeout=30`);
    // The first result reaches corrosion within an interval or two; poll, bounded.
    let checks: unknown[] = [];
    for (let attempt = 0; attempt < 100 && checks.length === 0; attempt++) {
      checks = (await expectShape(200, 'GET', path)).body.checks;
      if (checks.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(checks).toEqual([expect.objectContaining({ name: 'alive', status: 'passing' })]);
    const listed = await expectShape(200, 'GET', '/v1/apps/contract/machines');
    const mine = listed.body.find((machine: { id: string }) => machine.id === created.body.id);
    expect(mine.checks).toEqual(checks);
    await expectShape(200, 'DELETE', `${path}?kill=true`);
  });

  it('leases: one holder with a 12-hex nonce; others get 409 aborted until it is released', async () => {
    const id = await started('contract');
    const path = `/v1/apps/contract/machines/${id}`;
    const none = await expectError(404, 'FLYD_ERR_NO_LEASE', 'GET', `${path}/lease`);
    expect(none.body.error).toMatch(/lease not found/);
    await expectError(400, 'BAD_REQUEST', 'POST', `${path}/lease?ttl=soon`);
    await expectError(400, 'BAD_REQUEST', 'POST', `${path}/lease?ttl=0`);
    await expectError(400, 'BAD_REQUEST', 'POST', `${path}/lease`, { ttl: 100_000 });
    const taken = await expectShape(200, 'POST', `${path}/lease?ttl=60`);
    const nonce = taken.body.data.nonce as string;
    expect((await expectShape(200, 'GET', `${path}/lease`)).body.data.nonce).toBe(nonce);
    const held = await expectError(409, 'FLYD_ERR_LEASE_HELD', 'POST', `${path}/lease`);
    expect(held.body.error).toMatch(/^aborted: .*lease currently held/);
    const withNonce = { headers: { 'fly-machine-lease-nonce': nonce } };
    await expectError(409, 'FLYD_ERR_LEASE_HELD', 'DELETE', `${path}/lease`);
    await expectShape(200, 'DELETE', `${path}/lease`, undefined, withNonce);
    await expectError(404, 'FLYD_ERR_NO_LEASE', 'GET', `${path}/lease`);
  });

  it('destroy: a started machine needs force (412 failed_precondition); then it is gone', async () => {
    const id = await started('contract');
    const path = `/v1/apps/contract/machines/${id}`;
    const refused = await expectError(412, 'FLYD_ERR_PRECONDITION', 'DELETE', path);
    expect(refused.body.error).toMatch(/^failed_precondition: /);
    await expectShape(200, 'DELETE', `${path}?force=true`);
    const listed = await expectShape(200, 'GET', '/v1/apps/contract/machines?include_deleted=true');
    expect(listed.body).toContainEqual(expect.objectContaining({ id, state: 'destroyed' }));
    expect((await fleet.call('GET', '/v1/apps/contract/machines')).body).not.toContainEqual(
      expect.objectContaining({ id }),
    );
  });

  it('volumes: create, list, get, update, extend, snapshots and delete in the Volume shape', async () => {
    const path = '/v1/apps/contract/volumes';
    const volume = (
      await expectShape(200, 'POST', path, { name: 'data', region: 'ams', size_gb: 1 })
    ).body;
    expect(volume).toMatchObject({ name: 'data', region: 'ams', size_gb: 1, state: 'created' });
    await expectError(400, 'BAD_REQUEST', 'POST', path, { region: 'ams' });
    const noRoom = await expectError(412, 'FLAPS_ERR_NO_CAPACITY', 'POST', path, {
      name: 'data',
      region: 'syd',
    });
    expect(noRoom.body.status).toBe('insufficient_capacity');
    const listed = await expectShape(200, 'GET', path);
    expect(listed.body).toContainEqual(expect.objectContaining({ id: volume.id }));
    // The App shape counts what the app has, as the lists show it (destroyed ones left out).
    const machines = await expectShape(200, 'GET', '/v1/apps/contract/machines');
    const apps = await expectShape(200, 'GET', '/v1/apps?org_slug=personal');
    const counts = { machine_count: machines.body.length, volume_count: listed.body.length };
    expect(counts.machine_count).toBeGreaterThan(0);
    expect((await expectShape(200, 'GET', '/v1/apps/contract')).body).toMatchObject(counts);
    expect(apps.body.apps).toContainEqual(expect.objectContaining({ name: 'contract', ...counts }));
    await expectShape(200, 'GET', `${path}/${volume.id}`);
    const updated = await expectShape(200, 'PUT', `${path}/${volume.id}`, {
      snapshot_retention: 7,
    });
    expect(updated.body.snapshot_retention).toBe(7);
    const extended = await expectShape(200, 'PUT', `${path}/${volume.id}/extend`, { size_gb: 3 });
    expect(extended.body).toMatchObject({ needs_restart: false, volume: { size_gb: 3 } });
    await expectError(400, 'FLYD_ERR_VOLUME_SHRINK', 'PUT', `${path}/${volume.id}/extend`, {
      size_gb: 1,
    });
    const snapshot = await expectShape(200, 'POST', `${path}/${volume.id}/snapshots`);
    const snapshots = await expectShape(200, 'GET', `${path}/${volume.id}/snapshots`);
    expect(snapshots.body).toContainEqual(expect.objectContaining({ id: snapshot.body.id }));
    // Attached, it cannot go; detached (its machine destroyed), it can.
    const machine = await expectShape(200, 'POST', '/v1/apps/contract/machines', {
      region: 'ams',
      config: { ...hello, mounts: [{ volume: volume.id, path: '/data' }] },
    });
    await expectShape(
      200,
      'GET',
      `/v1/apps/contract/machines/${machine.body.id}/wait?state=started&timeout=30`,
    );
    const attached = await expectError(
      412,
      'FLYD_ERR_VOLUME_ATTACHED',
      'DELETE',
      `${path}/${volume.id}`,
    );
    expect(attached.body.error).toMatch(/^failed_precondition: /);
    await expectShape(200, 'DELETE', `/v1/apps/contract/machines/${machine.body.id}?force=true`);
    const deleted = await expectShape(200, 'DELETE', `${path}/${volume.id}`);
    expect(deleted.body.state).toBe('destroyed');
  });

  it('migrate (a Fleet extension): the machine and its volume move to the other worker, same id', async () => {
    const volume = (
      await expectShape(200, 'POST', '/v1/apps/contract/volumes', { name: 'moving', region: 'ams' })
    ).body;
    const created = await expectShape(200, 'POST', '/v1/apps/contract/machines', {
      region: 'ams',
      config: { ...hello, mounts: [{ volume: volume.id, path: '/data' }] },
    });
    const id = created.body.id as string;
    await expectShape(200, 'GET', `/v1/apps/contract/machines/${id}/wait?state=started`);
    const before = (await fleet.call('GET', `/v1/apps/contract/volumes/${volume.id}`)).body;
    const moved = await expectShape(200, 'POST', `/v1/apps/contract/machines/${id}/migrate`);
    expect(moved.body.id).toBe(id);
    const after = (await fleet.call('GET', `/v1/apps/contract/volumes/${volume.id}`)).body;
    expect(after.zone).not.toBe(before.zone);
    await expectError(
      400,
      'FLAPS_ERR_BAD_REQUEST',
      'POST',
      `/v1/apps/contract/machines/${id}/migrate`,
      {
        host_id: 'no-such-worker',
      },
    );
  });

  it("app delete destroys the app's machines (a running one killed) and volumes on their workers, then the app is gone", async () => {
    await expectShape(201, 'POST', '/v1/apps', { app_name: 'teardown' });
    const volumes = '/v1/apps/teardown/volumes';
    const mounted = (await expectShape(200, 'POST', volumes, { name: 'data', region: 'ams' })).body;
    const spare = (await expectShape(200, 'POST', volumes, { name: 'spare', region: 'ams' })).body;
    const onVolume = await expectShape(200, 'POST', '/v1/apps/teardown/machines', {
      region: 'ams',
      config: { ...hello, mounts: [{ volume: mounted.id, path: '/data' }] },
    });
    const running = await started('teardown');
    const idle = await expectShape(200, 'POST', '/v1/apps/teardown/machines', {
      region: 'ams',
      config: hello,
      skip_launch: true,
    });
    await expectShape(
      200,
      'GET',
      `/v1/apps/teardown/machines/${onVolume.body.id}/wait?state=started&timeout=30`,
    );
    const listed = (await fleet.call('GET', '/v1/apps/teardown/machines')).body as {
      id: string;
      host_id: string;
    }[];
    expect(listed).toHaveLength(3);
    await expectShape(202, 'DELETE', '/v1/apps/teardown');
    // On each machine's worker: destroyed (its process gone with it).
    for (const machine of listed) {
      const onWorker = await fleet.flyd(machine.host_id, 'GET', `/v1/machines/${machine.id}`);
      expect(onWorker.status === 404 || onWorker.body.state === 'destroyed', machine.id).toBe(true);
    }
    expect(listed.map((machine) => machine.id).sort()).toEqual(
      [onVolume.body.id, running, idle.body.id].sort(),
    );
    // Each volume destroyed on its worker, its directory removed.
    for (const volume of [mounted, spare]) {
      const onWorker = await fleet.flyd(volume.host_id, 'GET', `/v1/volumes/${volume.id}`);
      expect(onWorker.status === 404 || onWorker.body.state === 'destroyed', volume.id).toBe(true);
      const dataDir = present(
        fleet.workers[volume.host_id],
        'fleet.workers[volume.host_id]',
      ).dataDir;
      expect(existsSync(join(dataDir, 'volumes', volume.id)), volume.id).toBe(false);
    }
    await expectError(404, 'FLAPS_ERR_APP_NOT_FOUND', 'GET', '/v1/apps/teardown');
    await expectError(404, 'FLAPS_ERR_APP_NOT_FOUND', 'GET', '/v1/apps/teardown/machines');
    // The name is free again.
    await expectShape(201, 'POST', '/v1/apps', { app_name: 'teardown' });
    expect((await fleet.call('GET', '/v1/apps/teardown/machines')).body).toEqual([]);
  });

  it('certificates (a Fleet extension): add a hostname, list, show, refuse another app, remove', async () => {
    const added = await expectShape(201, 'POST', '/v1/apps/contract/certificates', {
      hostname: 'Shop.Example.com',
    });
    expect(added.body).toEqual({ hostname: 'shop.example.com', app: 'contract', issued: false });
    const listed = await expectShape(200, 'GET', '/v1/apps/contract/certificates');
    expect(listed.body.certificates).toContainEqual(added.body);
    await expectShape(200, 'GET', '/v1/apps/contract/certificates/shop.example.com');
    await expectShape(201, 'POST', '/v1/apps', { app_name: 'other-certs' });
    await expectError(422, 'FLAPS_ERR_NAME_TAKEN', 'POST', '/v1/apps/other-certs/certificates', {
      hostname: 'shop.example.com',
    });
    await expectError(400, 'BAD_REQUEST', 'POST', '/v1/apps/contract/certificates', {
      hostname: 'not a host',
    });
    await expectError(
      404,
      'FLAPS_ERR_HOSTNAME_NOT_FOUND',
      'DELETE',
      '/v1/apps/other-certs/certificates/shop.example.com',
    );
    await expectShape(200, 'DELETE', '/v1/apps/contract/certificates/shop.example.com');
    await expectError(
      404,
      'FLAPS_ERR_HOSTNAME_NOT_FOUND',
      'GET',
      '/v1/apps/contract/certificates/shop.example.com',
    );
  });

  it('secrets: set, list (digests, never values), unset; a machine gets them as env when it starts', async () => {
    await expectShape(201, 'POST', '/v1/apps', { app_name: 'secretive' });
    const set = await expectShape(200, 'POST', '/v1/apps/secretive/secrets', {
      values: { DB_URL: 'postgres://user:pw@db/main', TOKEN: 'first-token' },
    });
    expect(set.body.secrets.map((secret: { name: string }) => secret.name)).toEqual([
      'DB_URL',
      'TOKEN',
    ]);
    expect(JSON.stringify(set.body)).not.toMatch(/postgres|first-token/);
    const [, token] = set.body.secrets;
    const listed = await expectShape(200, 'GET', '/v1/apps/secretive/secrets');
    expect(listed.body).toEqual(set.body);
    // The same value again changes nothing; another value changes the digest.
    const again = await expectShape(200, 'POST', '/v1/apps/secretive/secrets', {
      values: { TOKEN: 'first-token' },
    });
    expect(again.body.secrets[1]).toEqual(token);
    const changed = await expectShape(200, 'POST', '/v1/apps/secretive/secrets', {
      values: { TOKEN: 'second-token' },
    });
    expect(changed.body.secrets[1].digest).not.toBe(token.digest);
    // corrosion holds sealed values only.
    const corrosion = new CorrosionClient({ url: fleet.corrosion });
    try {
      const rows = await corrosion.queryObjects<{ sealed: string }>(
        "SELECT sealed FROM app_secrets WHERE app = 'secretive'",
      );
      expect(rows).toHaveLength(2);
      for (const row of rows) expect(row.sealed).toMatch(/^fk1\./);
      expect(JSON.stringify(rows)).not.toMatch(/postgres|second-token/);
    } finally {
      await corrosion.close();
    }
    // A secret wins over the config's env of the same name, as on Fly; exec sees them too.
    const created = await expectShape(200, 'POST', '/v1/apps/secretive/machines', {
      region: 'ams',
      config: { ...hello, env: { TOKEN: 'from-config', PLAIN: 'kept' } },
    });
    const path = `/v1/apps/secretive/machines/${created.body.id}`;
    await expectShape(200, 'GET', `${path}/wait?state=started&timeout=30`);
    const printed = await expectShape(200, 'POST', `${path}/exec`, {
      command: ['printenv', 'TOKEN', 'DB_URL', 'PLAIN'],
    });
    expect(printed.body.stdout).toBe('second-token\npostgres://user:pw@db/main\nkept\n');
    // Unset by name and by null; the app's secrets are refused names and values that break rules.
    await expectShape(200, 'DELETE', '/v1/apps/secretive/secrets/DB_URL');
    await expectError(
      404,
      'FLAPS_ERR_SECRET_NOT_FOUND',
      'DELETE',
      '/v1/apps/secretive/secrets/DB_URL',
    );
    const unset = await expectShape(200, 'POST', '/v1/apps/secretive/secrets', {
      values: { TOKEN: null },
    });
    expect(unset.body.secrets).toEqual([]);
    const refusals: [unknown, string][] = [
      [{ values: { 'BAD-NAME': 'x' } }, 'values'],
      [{ values: { OK: 7 } }, 'values'],
      [{ values: { OK: 'nul\u0000byte' } }, 'values'],
      [{ values: { OK: 'x'.repeat(65_537) } }, 'values'],
      [{}, 'values'],
    ];
    for (const [body, field] of refusals) {
      const refused = await expectError(
        400,
        'BAD_REQUEST',
        'POST',
        '/v1/apps/secretive/secrets',
        body,
      );
      expect(refused.body.error).toContain(field);
    }
    await expectShape(200, 'DELETE', `${path}?force=true`);
  });

  it('every /v1 operation answers 401 without a token, and 404 for a missing app or machine', async () => {
    for (const operation of operations.filter((one) => one.includes(' /v1/'))) {
      const [method, template] = operation.split(' ') as [string, string];
      const body = sampleBodies[operation];
      const path = (app: string) => fillTemplate(template, app);
      await expectError(401, 'FLAPS_ERR_UNAUTHORIZED', method, path('contract'), body, {
        auth: null,
      });
      await expectError(401, 'FLAPS_ERR_UNAUTHORIZED', method, path('contract'), body, {
        auth: 'Bearer wrong-token',
      });
      if (!template.includes('{app}')) continue;
      await expectError(404, 'FLAPS_ERR_APP_NOT_FOUND', method, path('no-such-app'), body);
      if (template.includes('/machines/{id}')) {
        await expectError(404, 'FLAPS_ERR_MACHINE_NOT_FOUND', method, path('contract'), body);
      } else if (/\{(?!app\})/.test(template)) {
        // Another resource of the app (a volume...): missing, in Fly's error shape.
        const answer = await fleet.call(method, path('contract'), body);
        expect(answer.status, `${operation}: ${JSON.stringify(answer.body)}`).toBe(404);
        expect(shapeProblems('error', answer.body)).toEqual([]);
      }
    }
  });

  // Keep last: the tests above must have called every operation with a success.
  it('covers every operation of /openapi.json with a success and its shape', () => {
    expect([...operations].sort()).toEqual(Object.keys(operationResponses).sort());
    expect([...exercised].sort()).toEqual([...operations].sort());
  });
});
