import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import { mountsUnder } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { candidates } from '../src/runtime/machine-network.js';
import { call, createMachine, FlydFixture, hello, inState } from './flyd-fixture.js';

const root = process.getuid?.() === 0;

interface Shown {
  private_addr: string;
  private_ip: string;
  state: string;
}

// As root, each machine has a network of its own, as a Fly machine is a VM: it listens on its
// service's internal port (even 80, as its own unprivileged user) without meeting another
// machine's or the host's ports, is reached at its own address, and reaches nothing of the
// host's loopback. A stopped machine keeps its network (the latest --stopped-networks-max of
// them), a destroyed one's goes, and flyd's exit leaves none bound.
describe.runIf(root)('a network of its own per machine', () => {
  const fixture = new FlydFixture(['--listen-wait-ms', '1000', '--stopped-networks-max', '1']);
  let api = '';
  const show = async (id: string) =>
    present(await call(api, 'GET', `/v1/machines/${id}`), 'an answer').body as unknown as Shown;
  const exec = async (id: string, command: string[]) =>
    present(await call(api, 'POST', `/v1/machines/${id}/exec`, { command }), 'an answer').body as {
      stdout: string;
      stderr: string;
      exit_code: number;
    };
  const hostLink = (id: string) => {
    try {
      execFileSync('ip', ['link', 'show', `m${id}`], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };

  /** The machines whose network namespace flyd keeps on a file (running ones and stopped ones). */
  const kept = () => mountsUnder(join(fixture.dir, 'flyd', 'netns')).map((path) => basename(path));
  const stop = async (id: string) => {
    expect((await call(api, 'POST', `/v1/machines/${id}/stop`))?.status).toBe(200);
    await inState(api, id, 'stopped');
  };
  const start = async (id: string) => {
    expect((await call(api, 'POST', `/v1/machines/${id}/start`))?.status).toBe(200);
    await inState(api, id, 'started');
  };

  beforeAll(async () => {
    api = await fixture.start();
  });
  afterAll(() => fixture.close());

  it('runs two machines on one internal port, each reached at its own address', async () => {
    const ids = [await createMachine(api, 'net', hello), await createMachine(api, 'net', hello)];
    const addresses = [];
    for (const id of ids) {
      await inState(api, id, 'started');
      const shown = await show(id);
      expect(shown.private_addr).toBe(`${shown.private_ip}:8080`);
      expect(shown.private_ip).toMatch(/^198\.1[89]\.\d+\.\d+$/);
      const answer = await request(`http://${shown.private_addr}/`);
      expect((await answer.body.json()) as { machine_id: string }).toMatchObject({
        machine_id: id,
      });
      addresses.push(shown.private_ip);
    }
    expect(new Set(addresses).size).toBe(2);
    // Inside, its own loopback: the machine's own port answers there, flyd's API does not.
    const flydPort = new URL(api).port;
    const probe = (port: string) =>
      `require('net').connect(${port}, '127.0.0.1').on('connect', () => { console.log('reached'); process.exit(0) }).on('error', (e) => { console.log(e.code); process.exit(0) })`;
    const [first] = ids as [string, string];
    expect((await exec(first, ['node', '-e', probe('8080')])).stdout.trim()).toBe('reached');
    expect((await exec(first, ['node', '-e', probe(flydPort)])).stdout.trim()).toBe('ECONNREFUSED');
    // Stopped, it keeps its network, as a Fly machine keeps its address: started again it is
    // reached there.
    const before = (await show(first)).private_ip;
    await stop(first);
    expect(hostLink(first)).toBe(true);
    await start(first);
    expect((await show(first)).private_ip).toBe(before);
    expect((await request(`http://${before}:8080/`)).statusCode).toBe(200);
  });

  it('keeps the networks of the latest stopped machines only, and none of a destroyed one', async () => {
    const [older, newer] = [
      await createMachine(api, 'net', hello),
      await createMachine(api, 'net', hello),
    ] as [string, string];
    await inState(api, older, 'started');
    await inState(api, newer, 'started');
    const address = (await show(older)).private_ip;
    await stop(older);
    await stop(newer); // past --stopped-networks-max 1: the longest stopped loses its network
    await until("the older one's link gone", () => !hostLink(older) || undefined);
    expect(hostLink(newer)).toBe(true);
    expect(kept()).toContain(newer);
    expect(kept()).not.toContain(older);
    // Started again, it makes a new network, at the address it had.
    await start(older);
    expect((await show(older)).private_ip).toBe(address);
    expect((await request(`http://${address}:8080/`)).statusCode).toBe(200);
    expect((await call(api, 'DELETE', `/v1/machines/${newer}`))?.status).toBe(200);
    await until("the destroyed one's link gone", () => !hostLink(newer) || undefined);
    expect(kept()).not.toContain(newer);
    expect(kept()).toContain(older);
  });

  it("says in the machine's logs when it listens on 127.0.0.1 only, out of reach", async () => {
    const id = await createMachine(api, 'net', {
      ...hello,
      init: {
        exec: [
          'node',
          '-e',
          "require('node:http').createServer((q, s) => s.end()).listen(8080, '127.0.0.1')",
        ],
      },
    });
    await inState(api, id, 'started'); // after --listen-wait-ms, as a machine slow to listen
    await until('the hint in its logs', async () => {
      const lines = present(await call(api, 'GET', `/v1/machines/${id}/logs`), 'logs')
        .body as unknown as { message: string }[];
      return lines.some((line) =>
        /listens on 127\.0\.0\.1:8080 only.*listen on 0\.0\.0\.0:8080/.test(line.message),
      )
        ? true
        : undefined;
    });
  });

  it('lets a machine listen on port 80 as its own unprivileged user', async () => {
    const id = await createMachine(api, 'net', {
      ...hello,
      services: [{ internal_port: 80, ports: [{ port: 80, handlers: ['http'] }] }],
    });
    await inState(api, id, 'started');
    const shown = await show(id);
    expect(shown.private_addr).toBe(`${shown.private_ip}:80`);
    expect((await request(`http://${shown.private_addr}/`)).statusCode).toBe(200);
    expect(Number((await exec(id, ['id', '-u'])).stdout)).toBeGreaterThan(0);
  });

  it('leaves no network behind a launch that fails', async () => {
    const id = await createMachine(api, 'net', {
      ...hello,
      init: { exec: ['no-such-command-here'] },
      restart: { policy: 'no' },
    });
    await until('the failed launch', async () =>
      (await show(id)).state === 'stopped' ? true : undefined,
    );
    const address = (await show(id)).private_ip;
    expect(kept()).not.toContain(id);
    await until('its link gone', () => !hostLink(id) || undefined);
    // Neither its link's route nor its claim is left: the address is free.
    expect(execFileSync('ip', ['route', 'show', `${address}/32`], { encoding: 'utf8' })).toBe('');
  });

  it("never hands a machine an address of the host's own", async () => {
    const id = randomBytes(7).toString('hex');
    const [first] = candidates(id, null);
    const link = `fleett${process.pid % 100_000}`; // and its peer: 15 characters at most
    execFileSync('ip', ['link', 'add', link, 'type', 'veth', 'peer', 'name', `${link}p`]);
    try {
      execFileSync('ip', ['addr', 'add', `${first}/32`, 'dev', link]);
      const created = await call(api, 'POST', '/v1/machines', { id, app: 'net', config: hello });
      expect(created?.status).toBe(200);
      await inState(api, id, 'started');
      const shown = await show(id);
      expect(shown.private_ip).not.toBe(first);
      expect((await request(`http://${shown.private_addr}/`)).statusCode).toBe(200);
    } finally {
      execFileSync('ip', ['link', 'del', link]);
    }
  });

  it('frees the address a killed flyd had claimed for a launch it did not finish', async () => {
    const unreachable = (ip: string) =>
      execFileSync('ip', ['route', 'show', 'type', 'unreachable', `${ip}/32`], {
        encoding: 'utf8',
      });
    // flyd is killed the moment its claim (an `unreachable` route) appears, before the machine's
    // link replaces it; a launch whose link came first is not the case looked for: again.
    for (let attempt = 1; ; attempt++) {
      const id = randomBytes(7).toString('hex');
      const [claimed] = candidates(id, null); // the first address a new machine is given
      const address = present(claimed, 'an address');
      const monitor = spawn('ip', ['-o', 'monitor', 'route'], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      try {
        const seen = new RegExp(`unreachable ${address.replaceAll('.', '\\.')}(\\s|/|$)`);
        const killed = new Promise<void>((resolve) => {
          monitor.stdout.on('data', (chunk: Buffer) => {
            if (seen.test(chunk.toString())) resolve(fixture.kill());
          });
        });
        await new Promise((resolve) => setTimeout(resolve, 50)); // the monitor is listening
        await call(api, 'POST', '/v1/machines', { id, app: 'net', config: hello }).catch(() => {});
        await killed;
      } finally {
        monitor.kill();
      }
      const caught = unreachable(address) !== '';
      api = await fixture.startFlyd();
      await inState(api, id, 'started');
      if (!caught && attempt < 5) continue;
      expect(caught).toBe(true);
      // The next flyd removed the claim: the machine came up at its first address, not the next.
      expect(unreachable(address)).toBe('');
      expect((await show(id)).private_ip).toBe(address);
      return;
    }
  });

  it('leaves no kept network behind when flyd exits, nor after a killed one', async () => {
    const running = await createMachine(api, 'net', hello);
    await inState(api, running, 'started');
    const address = (await show(running)).private_addr;
    expect(kept().length).toBeGreaterThan(1);
    await fixture.kill();
    api = await fixture.startFlyd();
    expect(kept()).toEqual([]); // the next flyd drops what the killed one kept
    // A machine that ran on keeps its network through its process.
    await inState(api, running, 'started');
    expect((await request(`http://${address}/`)).statusCode).toBe(200);
    await stop(running);
    await start(running); // in a new network, at its address
    expect((await show(running)).private_addr).toBe(address);
    expect(kept()).toEqual([running]);
    expect((await request(`http://${address}/`)).statusCode).toBe(200);
    await fixture.stopFlyd(); // its machines run on, in their networks
    expect(kept()).toEqual([]);
  });
});
