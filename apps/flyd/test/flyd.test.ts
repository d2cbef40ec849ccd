import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CorrosionClient } from '@fleet/corrosion-client';
import { sampleImagesDir } from '@fleet/sample-images';
import {
  errorCodesInReadme,
  type ServerProcess,
  serverMain,
  startServerProcess,
} from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlydErrors } from '../src/errors.js';
import { passable } from './flyd-fixture.js';
import { machinePids } from './machine-processes.js';

const here = dirname(fileURLToPath(import.meta.url));
const corrosionMain = serverMain('@fleet/corrosion');
const flydMain = join(here, '..', 'dist', 'main.js');
const env = { ...process.env, LOG_LEVEL: 'warn', FLYD_TOKEN: 't0k' };
const hello = {
  image: 'hello',
  services: [{ protocol: 'tcp', internal_port: 8080, ports: [{ port: 80, handlers: ['http'] }] }],
};

// flyd as a real process over a real corrosion agent: machines are real processes whose state
// is published to corrosion, and flyd leaves none behind when it stops.
describe('flyd', () => {
  const dir = passable(mkdtempSync(join(tmpdir(), 'fleet-flyd-')));
  let corrosion: ServerProcess;
  let flyd: ServerProcess;
  let client: CorrosionClient;
  const startFlyd = () =>
    startServerProcess({
      command: process.execPath,
      args: [
        flydMain,
        '--listen',
        '127.0.0.1:0',
        '--data-dir',
        join(dir, 'flyd'),
        '--corrosion-url',
        present(corrosion.urls.api, 'corrosion.urls.api'),
        '--host-id',
        'w1',
        '--stop-machines-on-exit', // the test leaves no machine running behind it
        ...['--images-dir', sampleImagesDir],
      ],
      listeners: ['api'],
      env,
    });
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${flyd.urls.api}${path}`, {
      method,
      headers: {
        authorization: 'Bearer t0k',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  /** A call that must answer 200 (every call's status is checked): its answer. */
  const ok = async (method: string, path: string, body?: unknown) => {
    const answer = await call(method, path, body);
    expect(answer.status, `${method} ${path}: ${JSON.stringify(answer.body)}`).toBe(200);
    return answer;
  };
  const rowState = async (id: string) =>
    (
      await client.queryObjects<{ state: string }>([
        'SELECT state FROM machines WHERE id = ?',
        [id],
      ])
    )[0]?.state;

  beforeAll(async () => {
    corrosion = await startServerProcess({
      command: process.execPath,
      args: [corrosionMain, 'agent', '--db', join(dir, 'c.db'), '--api-addr', '127.0.0.1:0'],
      listeners: ['api'],
      env,
    });
    client = new CorrosionClient({ url: present(corrosion.urls.api, 'corrosion.urls.api') });
    flyd = await startFlyd();
  });
  afterAll(async () => {
    try {
      await flyd?.stop();
      await client?.close();
      await corrosion?.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs a machine through create, stop, start and destroy, publishing each state', async () => {
    const created = await call('POST', '/v1/machines', { app: 'web', config: hello });
    expect(created.status).toBe(200);
    const id = created.body.id as string;
    expect(id).toMatch(/^[0-9a-f]{14}$/);
    expect(await rowState(id)).toBeDefined(); // in corrosion as soon as create answers
    expect((await call('GET', `/v1/machines/${id}/wait?state=started&timeout=10`)).status).toBe(
      200,
    );
    const machine = (await call('GET', `/v1/machines/${id}`)).body;
    const answer = await (await fetch(`http://${machine.private_addr}/`)).json();
    expect(answer).toMatchObject({ machine_id: id, app: 'web', region: 'local' });
    expect(await rowState(id)).toBe('started');
    const services = await client.queryObjects([
      'SELECT internal_port, ports FROM services WHERE machine_id = ?',
      [id],
    ]);
    expect(services).toEqual([
      {
        internal_port: 8080,
        ports: JSON.stringify(present(hello.services[0], 'hello.services[0]').ports),
      },
    ]);

    expect((await call('POST', `/v1/machines/${id}/stop`)).status).toBe(200);
    expect(await rowState(id)).toBe('stopped');
    expect(machinePids(id)).toEqual([]);
    expect((await call('POST', `/v1/machines/${id}/start`)).body).toEqual({
      ok: true,
      previous_state: 'stopped',
    });
    expect(machinePids(id).length).toBeGreaterThan(0);

    const refused = await call('DELETE', `/v1/machines/${id}`);
    expect(refused.status).toBe(412);
    expect((await call('DELETE', `/v1/machines/${id}?kill=true`)).status).toBe(200);
    expect(await rowState(id)).toBe('destroyed');
    expect(machinePids(id)).toEqual([]);
    expect(
      await client.queryObjects(['SELECT * FROM services WHERE machine_id = ?', [id]]),
    ).toEqual([]);
    const events = (await call('GET', `/v1/machines/${id}`)).body.events as { status: string }[];
    expect(events[0]?.status).toBe('destroyed');
  });

  it('answers bad input and unknown machines with JSON errors', async () => {
    expect(
      (await call('POST', '/v1/machines', { app: 'web', config: { image: 'nope' } })).body,
    ).toMatchObject({ code: 'FLYD_ERR_BAD_CONFIG' });
    expect((await call('POST', '/v1/machines', { config: hello })).status).toBe(400);
    expect((await call('GET', '/v1/machines/ffffffffffffff')).status).toBe(404);
    // A command that cannot be spawned ends the create run at once (aborted: a retry cannot make
    // it appear); a start answers 422 FLYD_ERR_LAUNCH_FAILED, saying why (never a 500).
    const broken = await call('POST', '/v1/machines', {
      app: 'web',
      config: { image: 'hello', init: { exec: ['/nonexistent/binary'] } },
    });
    expect(broken.status).toBe(200); // the create is accepted; its launch fails
    const brokenId = broken.body.id as string;
    expect(
      (await call('GET', `/v1/machines/${brokenId}/wait?state=stopped&timeout=10`)).status,
    ).toBe(200);
    const runs = (await call('GET', `/v1/machines/${brokenId}/runs`)).body as unknown as {
      status: string;
      error: string;
    }[];
    expect(runs[0]).toMatchObject({ status: 'aborted', error: expect.stringMatching(/ENOENT/) });
    const restart = await call('POST', `/v1/machines/${brokenId}/start`);
    expect(restart).toMatchObject({ status: 422, body: { code: 'FLYD_ERR_LAUNCH_FAILED' } });
    expect(restart.body.error).toMatch(/^launch failed: .*\/nonexistent\/binary/);
    const anonymous = await fetch(`${flyd.urls.api}/v1/machines`);
    expect(anonymous.status).toBe(401);
  });

  // Input outside the machine config (a query, a header, another body) is refused as bad input,
  // not as a bad config, each message naming the field.
  it('answers a bad wait, lease, exec or volume import with 400 FLYD_ERR_BAD_REQUEST naming the field', async () => {
    const created = await call('POST', '/v1/machines', {
      app: 'web',
      config: hello,
      skip_launch: true,
    });
    expect(created.status).toBe(200);
    const path = `/v1/machines/${created.body.id}`;
    const rows: [string, string, unknown, string][] = [
      ['GET', `${path}/wait?state=asleep`, undefined, 'state must be one of'],
      ['GET', `${path}/wait?state=started&timeout=soon`, undefined, 'timeout must be'],
      ['POST', `${path}/lease?ttl=0`, undefined, 'ttl must be'],
      ['POST', `${path}/exec`, { command: [] }, 'exec needs "command"'],
      ['POST', `${path}/exec`, { command: ['true'], timeout: 601 }, 'timeout must be'],
    ];
    for (const [method, target, body, field] of rows) {
      const answer = await call(method, target, body);
      expect(answer, `${method} ${target}`).toMatchObject({
        status: 400,
        body: { code: 'FLYD_ERR_BAD_REQUEST', error: expect.stringContaining(field) },
      });
    }
    // A migrate's volume record that is not base64 JSON is bad input, not a 500.
    for (const record of ['%%%', Buffer.from('null').toString('base64url')]) {
      const imported = await fetch(`${flyd.urls.api}/v1/volumes/vol_0123456789abcdef/import`, {
        method: 'PUT',
        headers: { authorization: 'Bearer t0k', 'fleet-volume': record },
      });
      expect(imported.status, record).toBe(400);
      expect(await imported.json()).toMatchObject({ code: 'FLYD_ERR_BAD_REQUEST' });
    }
    // A path that names no volume is told in words (it was the bare pattern).
    for (const [method, target] of [
      ['GET', '/v1/volumes/nonexist'],
      ['POST', '/v1/volumes/vol_UPPERCASE000000/extend'],
      ['DELETE', '/v1/volumes/vol_short'],
    ] as const) {
      expect(
        await call(method, target, method === 'POST' ? { size_gb: 2 } : undefined),
      ).toMatchObject({
        status: 400,
        body: { error: 'id must be a volume id like vol_0123456789abcdef' },
      });
    }
    expect((await call('DELETE', path)).status).toBe(200);
  });

  it('stops its machines on SIGTERM and starts them again at boot', async () => {
    const id = (await ok('POST', '/v1/machines', { app: 'web', config: hello })).body.id as string;
    await ok('GET', `/v1/machines/${id}/wait?state=started&timeout=10`);
    expect(machinePids(id).length).toBeGreaterThan(0);
    await flyd.stop();
    expect(await flyd.exited).toBe(0);
    expect(machinePids(id)).toEqual([]);
    expect(await rowState(id)).toBe('stopped');
    flyd = await startFlyd();
    expect((await call('GET', `/v1/machines/${id}/wait?state=started&timeout=10`)).status).toBe(
      200,
    );
    expect(machinePids(id).length).toBeGreaterThan(0);
  });

  it('restarts a failing machine by its policy, then leaves it stopped', async () => {
    const crasher = {
      init: { exec: ['node', '-e', 'setTimeout(() => process.exit(3), 30)'] },
      image: 'hello',
      restart: { policy: 'on-failure', max_retries: 2 },
    };
    const id = (await ok('POST', '/v1/machines', { app: 'web', config: crasher })).body
      .id as string;
    const exits = async () =>
      (
        (await call('GET', `/v1/machines/${id}`)).body.events as {
          type: string;
          request?: { exit_event?: { exit_code: number; restarting?: boolean } };
        }[]
      )
        .filter((event) => event.type === 'exit' && event.request?.exit_event?.exit_code === 3)
        .map((event) => event.request?.exit_event?.restarting);
    // The first run and two restarts; the last exit says the policy does not restart it again.
    const seen = await until('three exits', exits, (restarting) => restarting.length === 3);
    expect(seen).toEqual([false, true, true]);
    expect((await call('GET', `/v1/machines/${id}`)).body.state).toBe('stopped');
  });

  it('restarts a machine on request and passes signals to it', async () => {
    const id = (await ok('POST', '/v1/machines', { app: 'web', config: hello })).body.id as string;
    await ok('GET', `/v1/machines/${id}/wait?state=started&timeout=10`);
    const before = machinePids(id);
    expect((await call('POST', `/v1/machines/${id}/restart`, { timeout: 5 })).body).toEqual({
      ok: true,
    });
    const after = machinePids(id);
    expect(after.length).toBeGreaterThan(0);
    expect(after).not.toEqual(before);
    // SIGTERM makes hello exit 0: under on-failure the machine stays stopped.
    expect((await call('POST', `/v1/machines/${id}/signal`, { signal: 'SIGTERM' })).body).toEqual({
      ok: true,
    });
    expect((await call('GET', `/v1/machines/${id}/wait?state=stopped&timeout=10`)).status).toBe(
      200,
    );
    expect((await call('POST', `/v1/machines/${id}/signal`, { signal: 'SIGTERM' })).status).toBe(
      412,
    );
    expect((await call('POST', `/v1/machines/${id}/signal`, { signal: 'SIGNOPE' })).status).toBe(
      400,
    );
  });

  it('runs health checks and publishes their status to corrosion', async () => {
    const checked = {
      ...hello,
      checks: {
        alive: { type: 'http', port: 8080, path: '/', interval: '100ms', timeout: '300ms' },
      },
    };
    const id = (await ok('POST', '/v1/machines', { app: 'web', config: checked })).body
      .id as string;
    const status = async () =>
      (
        await client.queryObjects<{ status: string }>([
          'SELECT status FROM health_checks WHERE machine_id = ? AND name = ?',
          [id, 'alive'],
        ])
      )[0]?.status;
    const checkIs = (wanted: string | undefined) =>
      until(`the check ${wanted ?? 'gone'}`, status, (now) => now === wanted);
    await checkIs('passing');
    await ok('POST', `/v1/machines/${id}/signal`, { signal: 'SIGSTOP' }); // frozen: answers nothing
    await checkIs('critical');
    await ok('POST', `/v1/machines/${id}/signal`, { signal: 'SIGCONT' });
    await checkIs('passing');
    await ok('DELETE', `/v1/machines/${id}?kill=true`);
    await checkIs(undefined); // its row goes with the machine
  });

  it('updates a machine to a new version, keeps metadata, and cordons it off the proxy', async () => {
    const id = (await ok('POST', '/v1/machines', { app: 'web', config: hello })).body.id as string;
    await ok('GET', `/v1/machines/${id}/wait?state=started&timeout=10`);
    const before = (await call('GET', `/v1/machines/${id}`)).body;
    const pids = machinePids(id);
    const updated = await call('POST', `/v1/machines/${id}`, {
      config: { ...hello, env: { GREETING: 'v2' } },
    });
    expect(updated.body).toMatchObject({ state: 'started', config: { env: { GREETING: 'v2' } } });
    expect(updated.body.instance_id).not.toBe(before.instance_id);
    expect(machinePids(id)).not.toEqual(pids);
    expect((await call('POST', `/v1/machines/${id}`, { config: { image: 'nope' } })).status).toBe(
      400,
    );

    expect(
      (
        await fetch(`${flyd.urls.api}/v1/machines/${id}/metadata/role`, {
          method: 'POST',
          headers: { authorization: 'Bearer t0k', 'content-type': 'application/json' },
          body: JSON.stringify({ value: 'primary' }),
        })
      ).status,
    ).toBe(204);
    expect((await call('GET', `/v1/machines/${id}/metadata`)).body).toEqual({ role: 'primary' });
    const published = await client.queryObjects<{ metadata: string }>([
      'SELECT metadata FROM machines WHERE id = ?',
      [id],
    ]);
    expect(JSON.parse(present(published[0], 'published[0]').metadata)).toEqual({ role: 'primary' });

    const services = async () =>
      (await client.queryObjects(['SELECT internal_port FROM services WHERE machine_id = ?', [id]]))
        .length;
    expect(await services()).toBe(1);
    await ok('POST', `/v1/machines/${id}/cordon`);
    expect(await services()).toBe(0);
    await ok('POST', `/v1/machines/${id}/uncordon`);
    expect(await services()).toBe(1);
    await ok('DELETE', `/v1/machines/${id}?kill=true`);
  });

  it('suspends a machine with SIGSTOP and resumes it on start; lists versions, processes; execs', async () => {
    const id = (
      await ok('POST', '/v1/machines', {
        app: 'web',
        config: { ...hello, env: { GREETING: 'v1' } },
      })
    ).body.id as string;
    await ok('GET', `/v1/machines/${id}/wait?state=started&timeout=10`);
    const [pid] = machinePids(id);
    const processState = () =>
      spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim();

    expect(await call('POST', `/v1/machines/${id}/suspend`)).toMatchObject({ status: 200 });
    expect((await call('GET', `/v1/machines/${id}`)).body.state).toBe('suspended');
    expect(processState()).toMatch(/^T/); // stopped by a signal: paused, memory kept
    expect(await rowState(id)).toBe('suspended');
    expect((await call('POST', `/v1/machines/${id}/suspend`)).status).toBe(200); // idempotent
    expect((await call('POST', `/v1/machines/${id}/restart`)).status).toBe(412);
    expect((await call('POST', `/v1/machines/${id}/start`)).body).toMatchObject({
      previous_state: 'suspended',
    });
    expect(processState()).not.toMatch(/^T/); // running again (R or S)
    expect(machinePids(id)).toContain(pid); // the same process, resumed

    const ps = (await call('GET', `/v1/machines/${id}/ps`)).body as unknown as {
      pid: number;
      command: string;
      rss: number;
    }[];
    expect(ps.map((process) => process.pid)).toContain(pid);
    expect(ps[0]).toMatchObject({
      command: expect.stringContaining('node'),
      rss: expect.any(Number),
    });

    const exec = await call('POST', `/v1/machines/${id}/exec`, {
      cmd: 'echo $GREETING $FLY_MACHINE_ID; exit 3',
    });
    expect(exec.body).toEqual({ stdout: `v1 ${id}\n`, stderr: '', exit_code: 3, exit_signal: 0 });
    const slow = await call('POST', `/v1/machines/${id}/exec`, {
      command: ['sleep', '5'],
      timeout: 0.2,
    });
    expect(slow.body).toMatchObject({ exit_signal: 9 });
    expect((await call('POST', `/v1/machines/${id}/exec`, {})).status).toBe(400);

    await ok('POST', `/v1/machines/${id}`, { config: { ...hello, env: { GREETING: 'v2' } } });
    const versions = (await call('GET', `/v1/machines/${id}/versions`)).body as unknown as {
      version: string;
      user_config: { env: { GREETING: string } };
    }[];
    expect(versions.map((version) => version.user_config.env.GREETING)).toEqual(['v2', 'v1']);
    expect(present(versions[0], 'versions[0]').version).toBe(
      (await call('GET', `/v1/machines/${id}`)).body.instance_id,
    );

    await ok('POST', `/v1/machines/${id}/suspend`);
    await ok('POST', `/v1/machines/${id}/stop`, { timeout: 5 });
    expect((await call('GET', `/v1/machines/${id}`)).body.state).toBe('stopped');
    expect((await call('GET', `/v1/machines/${id}/ps`)).status).toBe(412);
    await ok('DELETE', `/v1/machines/${id}?kill=true`);
  });

  it('documents every error code it has', () => {
    expect(errorCodesInReadme(join(here, '..', 'README.md')).sort()).toEqual(
      Object.keys(FlydErrors).sort(),
    );
    const help = spawnSync(process.execPath, [flydMain, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--data-dir');
  });
});
