import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { present } from '@fleet/service/invariant';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MachineUsers } from '../src/runtime/machine-users.js';
import { callExpecting } from './expect-status.js';
import { call, FlydFixture, hello, inState, runsIdle } from './flyd-fixture.js';
import { tempDir } from './temp-dirs.js';

// A machine is someone else's code: it runs as a user of its own, so it cannot signal flyd (or
// corrosion, the proxy, another machine), read flyd's database, another machine's root, volume
// or environment, or become root again through a setuid program. As root (CI, a worker) flyd
// must do so (or refuse to start, unless told `--machine-users off`); as anyone else it cannot
// switch users, and machines run as flyd's own, as they do with `off` (below).
const root = process.getuid?.() === 0;

interface Exec {
  stdout: string;
  stderr: string;
  exit_code: number;
}

describe('machine users', () => {
  const fixture = new FlydFixture();
  let api: string;
  const dataDir = join(fixture.dir, 'flyd');
  const newId = () => randomBytes(7).toString('hex');
  const exec = async (id: string, cmd: string): Promise<Exec> =>
    present(await call(api, 'POST', `/v1/machines/${id}/exec`, { cmd }), 'an answer')
      .body as unknown as Exec;
  const pidsOf = async (id: string): Promise<number[]> => {
    const answer = present(await call(api, 'GET', `/v1/machines/${id}/ps`), 'an answer');
    return (answer.body as unknown as { pid: number }[]).map((one) => one.pid);
  };
  const uidOf = async (id: string) => Number((await exec(id, 'id -u')).stdout);
  const start = async (config: Record<string, unknown> = hello): Promise<string> => {
    const id = newId();
    await callExpecting(api, 'POST', '/v1/machines', { id, app: 'tenants', config });
    await inState(api, id, 'started');
    return id;
  };

  beforeAll(async () => {
    api = await fixture.start();
  });
  afterAll(() => fixture.close());

  it.runIf(root)(
    'gives each machine a uid of its own, and one destroyed gives it back',
    async () => {
      const [first, second] = [await start(), await start()];
      const [firstUid, secondUid] = [await uidOf(first), await uidOf(second)];
      expect(firstUid).toBeGreaterThanOrEqual(300_000);
      expect(secondUid).toBeGreaterThanOrEqual(300_000);
      expect(secondUid).not.toBe(firstUid);
      expect((await exec(first, 'id -g; id -G')).stdout).toBe(`${firstUid}\n${firstUid}\n`);
      // Its root is its own (HOME, writable); the processes ps lists run as it.
      expect((await exec(first, 'echo mine > "$HOME/note" && cat "$HOME/note"')).stdout).toBe(
        'mine\n',
      );
      const processes = await pidsOf(first);
      expect(processes.length).toBeGreaterThan(0);
      for (const pid of processes)
        expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(
          new RegExp(`^Uid:\\t${firstUid}\\t${firstUid}\\t${firstUid}\\t${firstUid}$`, 'm'),
        );
      await callExpecting(api, 'POST', `/v1/machines/${first}/stop`);
      await inState(api, first, 'stopped');
      await callExpecting(api, 'DELETE', `/v1/machines/${first}`);
      await runsIdle(api);
      const third = await start();
      expect(await uidOf(third)).toBe(firstUid); // the lowest free one again
    },
  );

  it.runIf(root)('cannot reach flyd, its database, or another machine', async () => {
    const [mine, theirs] = [await start(), await start()];
    const flydPid = present(fixture.flyd?.child.pid, "flyd's pid");
    const theirRoot = join(dataDir, 'roots', theirs);
    const [theirServer] = await pidsOf(theirs);
    expect(theirServer).toBeGreaterThan(0);
    const refused = async (cmd: string) => {
      const answer = await exec(mine, cmd);
      expect(answer.exit_code, `${cmd}: ${answer.stdout}`).not.toBe(0);
      return answer.stderr;
    };
    expect(await refused(`kill -0 ${flydPid}`)).toMatch(/not permitted/i);
    expect(await refused(`kill -0 ${theirServer}`)).toMatch(/not permitted/i);
    expect(await refused(`cat /proc/${theirServer}/environ`)).toMatch(/denied/i);
    expect(await refused(`cat ${join(dataDir, 'flyd.db')}`)).toMatch(/denied/i);
    expect(await refused(`ls ${join(dataDir, 'machines')}`)).toMatch(/denied/i);
    expect(await refused(`ls ${join(dataDir, 'roots')}`)).toMatch(/denied/i);
    expect(await refused(`ls ${theirRoot}`)).toMatch(/denied/i);
    expect(await refused(`cat ${theirRoot}/server.mjs`)).toMatch(/denied/i);
    // No setuid program makes it root again (no_new_privs), and it has no groups beside its own.
    expect((await exec(mine, 'grep NoNewPrivs /proc/self/status')).stdout).toMatch(/:\s*1/);
  });

  it.runIf(root)('owns its volume, which changes hands with the volume', async () => {
    const volume = (
      await callExpecting(api, 'POST', '/v1/volumes', { app: 'tenants', name: 'data' })
    ).body.id as string;
    const config = { ...hello, mounts: [{ volume, path: '/data' }] };
    const writer = await start(config);
    expect(
      (await exec(writer, 'mkdir -p data/d && echo kept > data/d/file && echo ok')).stdout,
    ).toBe('ok\n');
    const stranger = await start();
    expect((await exec(stranger, `ls ${join(dataDir, 'volumes', volume)}`)).exit_code).not.toBe(0);
    // A volume no machine has yet, empty or a fork of this one, is no other machine's either.
    const unmounted = async (body: Record<string, unknown>) =>
      (await callExpecting(api, 'POST', '/v1/volumes', { app: 'tenants', ...body })).body
        .id as string;
    for (const spare of [
      await unmounted({ name: 'spare' }),
      await unmounted({ name: 'fork', source_volume_id: volume }),
    ]) {
      const tried = await exec(stranger, `ls ${join(dataDir, 'volumes', spare)}`);
      expect(tried.stderr, spare).toMatch(/Permission denied/);
    }
    await callExpecting(api, 'DELETE', `/v1/machines/${writer}?kill=true`);
    await runsIdle(api);
    const heir = await start(config);
    const answer = await exec(
      heir,
      'cat data/d/file && echo more >> data/d/file && cat data/d/file',
    );
    expect(answer).toMatchObject({ stdout: 'kept\nkept\nmore\n', exit_code: 0 });
  });
});

describe('--machine-users', () => {
  it('refuses a range that is not one, naming the flag', async () => {
    const fixture = new FlydFixture(['--machine-users', '500-100']);
    try {
      await expect(fixture.start()).rejects.toThrow(
        /--machine-users must be auto, off or a uid range/,
      );
    } finally {
      await fixture.close();
    }
  });

  it.runIf(root)('off: machines run as flyd', async () => {
    const fixture = new FlydFixture(['--machine-users', 'off']);
    try {
      const api = await fixture.start();
      const id = randomBytes(7).toString('hex');
      await callExpecting(api, 'POST', '/v1/machines', { id, app: 'tenants', config: hello });
      await inState(api, id, 'started');
      const answer = await call(api, 'POST', `/v1/machines/${id}/exec`, { cmd: 'id -u' });
      expect(answer?.body).toMatchObject({ stdout: '0\n' });
    } finally {
      await fixture.close();
    }
  });
});

describe('machine users, where a machine could not reach its folders', () => {
  it.runIf(root)(
    'are refused under auto, as root, when a folder on the real path of the data directory is closed',
    () => {
      const top = tempDir('fleet-users-');
      chmodSync(top, 0o711);
      // top/open/link -> top/closed/real: the closed folder is on the real path only.
      const closed = join(top, 'closed');
      mkdirSync(join(closed, 'real', 'flyd'), { recursive: true });
      chmodSync(closed, 0o700);
      mkdirSync(join(top, 'open'), { mode: 0o711 });
      symlinkSync(join(closed, 'real'), join(top, 'open', 'link'));
      const db = new Database(':memory:');
      try {
        const dataDir = join(top, 'open', 'link', 'flyd');
        // Machines would run as root: never unasked (`off` says so).
        expect(() => MachineUsers.configure(db, 'auto', dataDir)).toThrow(
          `--machine-users auto: ${closed} does not let other users through (chmod o+x), so machines could not reach ${dataDir} — machines would run as root; fix that, or pass --machine-users off to accept it`,
        );
        expect(MachineUsers.configure(db, 'off', dataDir)).toEqual({ off: '--machine-users off' });
        expect(() => MachineUsers.configure(db, '300000-300100', dataDir)).toThrow(
          /--machine-users/,
        );
        chmodSync(closed, 0o711);
        expect(MachineUsers.configure(db, 'auto', dataDir)).toHaveProperty('users');
      } finally {
        db.close();
      }
    },
  );
});
