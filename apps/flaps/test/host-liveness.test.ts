import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ServerProcess, startServerProcess, unmountUnder } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { livenessChanges } from '../src/host-liveness.js';
import { operatorToken } from './fleet.js';

const here = dirname(fileURLToPath(import.meta.url));
const main = (app: string) => join(here, '..', '..', app, 'dist', 'main.js');

// The pure rule: only SWIM's dead state marks a host down, only alive brings it back.
describe('host liveness from the SWIM view', () => {
  const host = (status: string, gossip: string | null = '10.0.0.2:8788') => [
    { id: 'w2', gossip_addr: gossip, status },
  ];
  const member = (state: string, addr = '10.0.0.2:8788') => ({ addr, state });

  it('marks a host down only once its member is dead, never while suspect', () => {
    expect(livenessChanges(host('ready'), [member('alive')])).toEqual({ down: [], ready: [] });
    expect(livenessChanges(host('ready'), [member('suspect')])).toEqual({ down: [], ready: [] });
    expect(livenessChanges(host('ready'), [member('down')])).toEqual({ down: ['w2'], ready: [] });
  });

  it('brings a down host back when a member at its address is alive (a restart: a new identity)', () => {
    expect(livenessChanges(host('down'), [member('down'), member('alive')])).toEqual({
      down: [],
      ready: ['w2'],
    });
    expect(livenessChanges(host('ready'), [member('down'), member('alive')])).toEqual({
      down: [],
      ready: [],
    });
  });

  it('leaves alone hosts SWIM forgot or never saw, hosts without a gossip address, and cordons', () => {
    expect(livenessChanges(host('down'), [])).toEqual({ down: [], ready: [] });
    expect(livenessChanges(host('ready'), [member('down', '10.0.0.3:8788')])).toEqual({
      down: [],
      ready: [],
    });
    expect(livenessChanges(host('ready', null), [member('down')])).toEqual({
      down: [],
      ready: [],
    });
    expect(livenessChanges(host('cordoned'), [member('down')])).toEqual({ down: [], ready: [] });
  });
});

// Real agents gossiping on 127.0.0.1 (fast SWIM timings) and flaps on one of them: the other
// agent stands for a worker host. Killed -9, its host goes down and its machine is reported
// `host_status: unreachable`; started again on the same address, the host is ready again.
describe('a host whose corrosion dies', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flaps-liveness-'));
  const keyFile = join(dir, 'fleet.key');
  const env = {
    ...process.env,
    LOG_LEVEL: 'warn',
    FLEET_API_TOKEN: operatorToken,
    FLYD_TOKEN: 'x',
  };
  const started: ServerProcess[] = [];
  let api = '';
  let corrosionApi = '';
  let workerGossip = '';

  const agent = async (name: string, gossipAddr: string, bootstrap: string[]) => {
    const server = await startServerProcess({
      command: process.execPath,
      args: [
        ...[main('corrosion'), 'agent', '--db', join(dir, `${name}.db`)],
        ...['--api-addr', '127.0.0.1:0', '--gossip-addr', gossipAddr],
        ...['--gossip-key-file', keyFile, '--probe-interval-ms', '100'],
        ...(bootstrap.length > 0 ? ['--bootstrap', bootstrap.join(',')] : []),
      ],
      listeners: ['api', 'gossip'],
      env,
    });
    started.push(server);
    return {
      server,
      gossip: present(server.urls.gossip, 'server.urls.gossip').replace('udp://', ''),
    };
  };
  const exec = async (statements: unknown[]) => {
    const response = await fetch(`${corrosionApi}/v1/transactions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(statements),
    });
    expect(response.status).toBe(200);
  };
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${api}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${operatorToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(20_000),
    });
    return { status: response.status, body: await response.json() };
  };
  const until = <T>(what: string, probe: () => Promise<T | undefined>) =>
    vi.waitFor(
      async () => {
        const value = await probe();
        if (value === undefined) throw new Error(`${what}: not within 30 s`);
        return value;
      },
      { timeout: 30_000, interval: 100 },
    );
  const listedHostStatus = async () =>
    ((await call('GET', '/v1/apps/lost/machines')).body as { host_status?: string }[])[0]
      ?.host_status;

  beforeAll(async () => {
    writeFileSync(keyFile, 'test-fleet-key-0123456789abcdef');
    const home = await agent('home', '127.0.0.1:0', []);
    corrosionApi = present(home.server.urls.api, 'home.server.urls.api');
    const worker = await agent('worker', '127.0.0.1:0', [home.gossip]);
    workerGossip = worker.gossip;
    const flaps = await startServerProcess({
      command: process.execPath,
      args: [main('flaps'), '--listen', '127.0.0.1:0', '--corrosion-url', corrosionApi],
      listeners: ['api'],
      env,
    });
    started.push(flaps);
    api = present(flaps.urls.api, 'flaps.urls.api');
    // The worker's rows as its flyd and the fleet's bootstrap would write them.
    await exec([
      [
        "INSERT INTO hosts (id, region, role, flyd_addr, status, gossip_addr) VALUES ('w2', 'ams', 'worker', 'http://127.0.0.1:9', 'ready', ?)",
        [workerGossip],
      ],
      "INSERT INTO apps (name) VALUES ('lost')",
      `INSERT INTO machines (id, app, name, host_id, region, instance_id, state, config, created_at, updated_at)
       VALUES ('0123456789abcd', 'lost', 'one', 'w2', 'ams', '01HZZZZZZZZZZZZZZZZZZZZZZZ', 'started', '{"image":"hello"}',
               '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`,
    ]);
  }, 60_000);

  afterAll(async () => {
    for (const server of started.reverse()) await server.stop();
    unmountUnder(dir); // volume disks a flyd killed at its stop's bound kept mounted
    rmSync(dir, { recursive: true, force: true });
  });

  it('is reported unreachable once SWIM declares it dead, and ok when it is back', async () => {
    expect(await listedHostStatus()).toBe('ok');
    const worker = present(started[1], 'started[1]');
    worker.child.kill('SIGKILL');
    await worker.exited;
    await until('host_status unreachable', async () =>
      (await listedHostStatus()) === 'unreachable' ? true : undefined,
    );
    // The machine is still reported with its last known state, without asking the dead host.
    const shown = await call('GET', '/v1/apps/lost/machines/0123456789abcd');
    expect(shown).toMatchObject({
      status: 200,
      body: { state: 'started', host_id: 'w2', host_status: 'unreachable' },
    });
    // An operation on it fails at once, naming the host.
    expect(await call('POST', '/v1/apps/lost/machines/0123456789abcd/stop', {})).toMatchObject({
      status: 503,
      body: { code: 'FLAPS_ERR_WORKER_UNREACHABLE', error: expect.stringContaining('w2 is down') },
    });
    // The same agent (its database: the same actor) back at the same address: a new identity.
    await agent('worker', workerGossip, [
      present(started[0]?.urls.gossip, 'the first agent gossip URL').replace('udp://', ''),
    ]);
    await until('host_status ok again', async () =>
      (await listedHostStatus()) === 'ok' ? true : undefined,
    );
  }, 90_000);
});
