import { randomBytes } from 'node:crypto';
import { present } from '@fleet/service/invariant';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callExpecting } from './expect-status.js';
import { call, FlydFixture, hello, inState } from './flyd-fixture.js';

// Each machine runs in a root of its own: a fresh copy of its image with the config's files,
// made at every launch (as on Fly, what it writes outside a volume is gone after a restart).
describe('a machine root', () => {
  const fixture = new FlydFixture();
  let api: string;
  const newId = () => randomBytes(7).toString('hex');
  const base64 = (text: string) => Buffer.from(text).toString('base64');
  const exec = async (id: string, cmd: string) =>
    present(await call(api, 'POST', `/v1/machines/${id}/exec`, { cmd }), 'an answer').body as {
      stdout: string;
    };
  const started = (id: string) => inState(api, id, 'started');

  beforeAll(async () => {
    api = await fixture.start();
  });
  afterAll(() => fixture.close());

  it("holds the image's files and the config's files, is the working directory, and resets at restart", async () => {
    const id = newId();
    const files = [
      { guest_path: '/etc/app/greeting.txt', raw_value: base64('hello from config'), mode: 0o600 },
    ];
    const created = await call(api, 'POST', '/v1/machines', {
      id,
      app: 'roots',
      config: { ...hello, files },
    });
    expect(created?.status).toBe(200);
    await started(id);
    expect((await exec(id, 'cat etc/app/greeting.txt')).stdout).toBe('hello from config');
    expect((await exec(id, 'stat -c %a etc/app/greeting.txt')).stdout.trim()).toBe('600');
    expect((await exec(id, 'pwd')).stdout.trim()).toMatch(new RegExp(`/roots/${id}$`));
    expect((await exec(id, 'echo "$HOME"')).stdout.trim()).toMatch(new RegExp(`/roots/${id}$`));
    expect((await exec(id, 'ls')).stdout).toContain('server.mjs');
    await exec(id, 'echo scratch > scratch.txt');
    expect((await exec(id, 'ls')).stdout).toContain('scratch.txt');
    expect((await call(api, 'POST', `/v1/machines/${id}/restart`))?.status).toBe(200);
    await started(id);
    expect((await exec(id, 'ls')).stdout).not.toContain('scratch.txt');
    expect((await exec(id, 'cat etc/app/greeting.txt')).stdout).toBe('hello from config');
  });

  it('is its own: two machines of one image do not share a working directory', async () => {
    const [first, second] = [newId(), newId()];
    for (const id of [first, second]) {
      await callExpecting(api, 'POST', '/v1/machines', { id, app: 'roots', config: hello });
      await started(id);
    }
    await exec(present(first, 'first'), 'echo mine > note.txt');
    expect((await exec(present(second, 'second'), 'ls')).stdout).not.toContain('note.txt');
  });

  it('refuses files it cannot write, naming the problem', async () => {
    const refused = async (file: unknown) => {
      const answer = await call(api, 'POST', '/v1/machines', {
        id: newId(),
        app: 'roots',
        config: { ...hello, files: [file] },
      });
      expect(answer?.status).toBe(400);
      return String(answer?.body.error);
    };
    expect(await refused({ guest_path: 'relative.txt', raw_value: '' })).toMatch(/absolute/);
    expect(await refused({ guest_path: '../escape', raw_value: '' })).toMatch(/absolute/);
    expect(await refused({ guest_path: '/a', raw_value: 'not base64!' })).toMatch(/base64/);
    expect(await refused({ guest_path: '/a', secret_name: 'DB_URL' })).toMatch(/secret_name/);
    expect(await refused({ guest_path: '/a', raw_value: '', mode: 99999 })).toMatch(/mode/);
  });
});
