import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sampleImagesDir } from '@fleet/sample-images';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, FlydFixture, hello } from './flyd-fixture.js';
import { settledIn } from './machine-wait.js';

const app = 'careless';

/** An image store with hello, and `tree`: hello plus a folder `public/` and a link `etc` → /etc. */
function imageStore(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-images-'));
  cpSync(join(sampleImagesDir, 'hello'), join(dir, 'hello'), { recursive: true });
  cpSync(join(sampleImagesDir, 'hello'), join(dir, 'tree'), { recursive: true });
  mkdirSync(join(dir, 'tree', 'public'));
  symlinkSync('/etc', join(dir, 'tree', 'etc'));
  return dir;
}

// A careless client against a real flyd and corrosion. A config that breaks the machine config
// schema (@fleet/machine-config, the one flaps checks too) is refused at create and at update
// with 400 naming the field, and nothing is created, reserved or changed; a launch that still
// fails (the command does not exist) is not retried, is recorded on the machine (stopped, with
// an event and a reason), and `start` answers 422 FLYD_ERR_LAUNCH_FAILED, never a 500 and never
// a path of the worker.
describe('bad machine configs', () => {
  const images = imageStore();
  const fixture = new FlydFixture(['--memory-mb', '1024', '--images-dir', images]);
  let api = '';

  beforeAll(async () => {
    api = await fixture.start();
  });
  afterAll(async () => {
    await fixture.close();
    rmSync(images, { recursive: true, force: true });
  });

  const machines = async () =>
    (await call(api, 'GET', `/v1/machines?app=${app}&include_deleted=true`))?.body as unknown as {
      id: string;
    }[];

  const refusals: [string, Record<string, unknown>, string, string][] = [
    [
      'memory as a string',
      { guest: { memory_mb: '512' } },
      'FLYD_ERR_BAD_CONFIG',
      'config.guest.memory_mb must be an integer >= 256',
    ],
    [
      'negative memory',
      { guest: { memory_mb: -5 } },
      'FLYD_ERR_BAD_CONFIG',
      'config.guest.memory_mb must be an integer >= 256',
    ],
    [
      '95 TB of memory',
      { guest: { cpu_kind: 'performance', cpus: 16, memory_mb: 99_614_720 } },
      'FLYD_ERR_BAD_CONFIG',
      'config.guest.memory_mb must be an integer >= 32768',
    ],
    ['negative cpus', { guest: { cpus: -2 } }, 'FLYD_ERR_BAD_CONFIG', 'config.guest.cpus must be'],
    [
      'cpus as a word',
      { guest: { cpus: 'two' } },
      'FLYD_ERR_BAD_CONFIG',
      'config.guest.cpus must be',
    ],
    [
      'env name with =',
      { env: { 'A=B': 'x' } },
      'FLYD_ERR_BAD_CONFIG',
      'config.env name "A=B" must be',
    ],
    [
      'env value with NUL',
      { env: { A: 'x\u0000' } },
      'FLYD_ERR_BAD_CONFIG',
      'config.env.A must be',
    ],
    [
      'env value a number',
      { env: { A: 1 } },
      'FLYD_ERR_BAD_CONFIG',
      'config.env.A must be a string',
    ],
    [
      'file path with a trailing slash',
      { files: [{ guest_path: '/server.mjs/', raw_value: '' }] },
      'FLYD_ERR_BAD_CONFIG',
      'config.files[0].guest_path must be an absolute file path',
    ],
    [
      'file over a file of the image',
      { files: [{ guest_path: '/server.mjs/x', raw_value: '' }] },
      'FLYD_ERR_BAD_CONFIG',
      'config.files[0].guest_path "/server.mjs/x": /server.mjs is a file of the image',
    ],
    [
      'max_retries -1',
      { restart: { max_retries: -1 } },
      'FLYD_ERR_BAD_CONFIG',
      'config.restart.max_retries must be an integer >= 0',
    ],
    [
      'restart policy sometimes',
      { restart: { policy: 'sometimes' } },
      'FLYD_ERR_BAD_CONFIG',
      'config.restart.policy must be one of',
    ],
    [
      'unknown image',
      { image: 'no-such-image' },
      'FLYD_ERR_BAD_CONFIG',
      'config.image: unknown image no-such-image',
    ],
  ];

  it.each(refusals)(
    'refuses %s at create, naming the field, and creates nothing',
    async (_what, change, code, message) => {
      const answer = await call(api, 'POST', '/v1/machines', {
        app,
        config: { ...hello, ...change },
      });
      expect(answer?.status, JSON.stringify(answer?.body)).toBe(400);
      expect(answer?.body.code).toBe(code);
      expect(answer?.body.error).toContain(message);
      expect(answer?.body.error).not.toContain(fixture.dir); // no path of this worker
      expect(await machines()).toEqual([]);
    },
  );

  it('refuses machine names with "/", newlines or shell characters', async () => {
    for (const name of ['a/b', 'web\n1', 'x;rm -rf /', '$(id)', 'a b']) {
      const answer = await call(api, 'POST', '/v1/machines', { app, name, config: hello });
      expect(answer?.status, JSON.stringify(name)).toBe(400);
      expect(answer?.body).toMatchObject({ code: 'BAD_REQUEST' });
      expect(answer?.body.error).toMatch(/^name must be a name of at most 63/);
    }
    expect(await machines()).toEqual([]);
  });

  it('refuses app names that are not Fly app names (flyd is reached by flaps, and by operators)', async () => {
    for (const name of ['../x', 'Demo', '-a', 'a-', 'a_b', 'a'.repeat(64), '']) {
      const answer = await call(api, 'POST', '/v1/machines', { app: name, config: hello });
      expect(answer?.status, JSON.stringify(name)).toBe(400);
      expect(answer?.body).toMatchObject({ code: 'BAD_REQUEST' });
      expect(answer?.body.error).toMatch(/^app must be an app name of at most 63 lowercase/);
    }
    expect(await machines()).toEqual([]);
  });

  // The schema cannot know the image: flyd refuses a file where the image has a folder, below a
  // file of the image, or through a link (which could lead out of the machine's root), and a
  // volume mounted over a folder of the image; a file of the image may be replaced.
  it('refuses files and mounts the image cannot take, naming the field', async () => {
    const tree = (change: Record<string, unknown>) => ({ ...hello, image: 'tree', ...change });
    const file = (guest_path: string) => tree({ files: [{ guest_path, raw_value: 'e30=' }] });
    for (const [config, message] of [
      [file('/public'), '"/public": /public is a folder of the image'],
      [file('/server.mjs/x'), '/server.mjs is a file of the image, not a folder'],
      [file('/etc/passwd'), '"/etc/passwd": /etc is a link in the image'],
      [
        tree({ mounts: [{ volume: 'vol_0123456789abcdef', path: '/public' }] }),
        'config.mounts[0].path "/public" is a folder of the image',
      ],
    ] as const) {
      const answer = await call(api, 'POST', '/v1/machines', { app, config });
      expect(answer?.status, JSON.stringify(answer?.body)).toBe(400);
      expect(answer?.body.code).toBe('FLYD_ERR_BAD_CONFIG');
      expect(answer?.body.error).toContain(message);
    }
    expect(await machines()).toEqual([]);
    const replaced = await call(api, 'POST', '/v1/machines', { app, config: file('/image.json') });
    expect(replaced?.status).toBe(200);
    const id = replaced?.body.id as string;
    await settledIn(api, id, 'started');
    expect((await call(api, 'DELETE', `/v1/machines/${id}?kill=true`))?.status).toBe(200);
  });

  it('refuses a bad update, leaving the machine as it was', async () => {
    const created = await call(api, 'POST', '/v1/machines', { app, config: hello });
    expect(created?.status).toBe(200);
    const id = created?.body.id as string;
    await settledIn(api, id, 'started');
    const refused = await call(api, 'POST', `/v1/machines/${id}`, {
      config: { ...hello, guest: { memory_mb: -5 } },
    });
    expect(refused).toMatchObject({ status: 400, body: { code: 'FLYD_ERR_BAD_CONFIG' } });
    expect(refused?.body.error).toContain('config.guest.memory_mb');
    const machine = await call(api, 'GET', `/v1/machines/${id}`);
    expect(machine?.body).toMatchObject({
      state: 'started',
      instance_id: created?.body.instance_id,
    });
    expect(machine?.body.config).toEqual(hello);
    expect((await call(api, 'DELETE', `/v1/machines/${id}?kill=true`))?.status).toBe(200);
  });

  it('records a launch that fails on the machine, without retrying, and answers start with 422', async () => {
    const created = await call(api, 'POST', '/v1/machines', {
      app,
      config: {
        image: 'hello',
        init: { exec: ['no-such-command-here'] },
        restart: { policy: 'no' },
      },
    });
    expect(created?.status).toBe(200); // the command is only looked for at launch
    const id = created?.body.id as string;
    await settledIn(api, id, 'stopped');
    const machine = present(await call(api, 'GET', `/v1/machines/${id}`), 'an answer');
    expect(machine.status).toBe(200);
    expect(machine.body.state).toBe('stopped');
    const events = machine.body.events as {
      type: string;
      status: string;
      request?: { error?: string };
    }[];
    expect(events[0]).toMatchObject({ type: 'exit', status: 'stopped' });
    expect(events[0]?.request?.error).toMatch(/^launch failed: .*no-such-command-here.*ENOENT/);
    expect(JSON.stringify(machine.body)).not.toContain(fixture.dir);
    // The create run ended at once: a command that is not there will not be there on a retry.
    const runs = (await call(api, 'GET', `/v1/machines/${id}/runs`))?.body as unknown as {
      action: string;
      status: string;
      retries: number;
    }[];
    expect(runs.find((run) => run.action === 'create')).toMatchObject({
      status: 'aborted',
      retries: 0,
    });

    const started = await call(api, 'POST', `/v1/machines/${id}/start`);
    expect(started?.status, JSON.stringify(started?.body)).toBe(422);
    expect(started?.body.code).toBe('FLYD_ERR_LAUNCH_FAILED');
    expect(started?.body.error).toMatch(/^launch failed: .*no-such-command-here/);
    expect(JSON.stringify(started?.body)).not.toContain(fixture.dir);
    const after = await until('the machine stopped again', async () => {
      const answer = await call(api, 'GET', `/v1/machines/${id}`);
      return answer?.body.state === 'stopped' ? answer.body : undefined;
    });
    const latest = (after.events as { request?: { error?: string } }[])[0];
    expect(latest?.request?.error).toMatch(/^launch failed/);
    expect((await call(api, 'DELETE', `/v1/machines/${id}`))?.status).toBe(200);
  });
});
