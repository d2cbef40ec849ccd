import { spawn, spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { present } from '@fleet/service/invariant';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Fleet, flydToken, hello, operatorToken, startFleet } from './fleet.js';

const here = dirname(fileURLToPath(import.meta.url));
/** Bound on one call of the stream (a call made mid-restart waits in the backlog meanwhile). */
const callTimeoutMs = 10_000;

/**
 * systemd-socket-activate (Debian's systemd package), when installed, launches each flaps: the
 * issue asks for it, and it checks the protocol end to end (it sets LISTEN_FDS and LISTEN_PID
 * itself, waits for the first connection, then exec()s flaps). It cannot keep the socket across
 * a restart (see fixtures/socket-holder.py), so the holder runs it with the socket.
 */
const socketActivate =
  spawnSync('systemd-socket-activate', ['--version'], { stdio: 'ignore' }).status === 0
    ? // It gives the command a fresh environment: the tokens are passed on by name (-E).
      ['systemd-socket-activate', '-E', 'FLEET_API_TOKEN', '-E', 'FLYD_TOKEN']
    : [];

/** One authenticated API call on a fresh connection, as a new client makes it. */
function callOnce(port: number, path: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve) => {
    const call = request(
      {
        host: '127.0.0.1',
        port,
        path,
        agent: false,
        timeout: callTimeoutMs,
        headers: { authorization: `Bearer ${operatorToken}` },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          text += chunk;
        });
        response.on('end', () => {
          try {
            resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) });
          } catch {
            resolve({ status: response.statusCode ?? 0, body: text });
          }
        });
      },
    );
    call.on('error', (error) => resolve({ status: 0, body: error.message }));
    call.on('timeout', () => call.destroy(new Error('timed out')));
    call.end();
  });
}

// Seed 002: redeploying flaps must not fail calls. A holder keeps the listening socket, as
// systemd's socket unit does, and hands it to each flaps (LISTEN_FDS, fd 3), through
// systemd-socket-activate when installed. A steady stream of authenticated calls on fresh
// connections — listing apps and the app's machines, read from a real corrosion and worker —
// runs while flaps is stopped and started again twice: connections wait in the socket's backlog
// meanwhile, and not one call fails or answers anything but the app and its machine.
describe('flaps under socket activation', () => {
  const app = 'steady';
  let fleet: Fleet;
  let machineId: string;

  beforeAll(async () => {
    fleet = await startFleet();
    expect((await fleet.call('POST', '/v1/apps', { app_name: app })).status).toBe(201);
    const created = await fleet.call('POST', `/v1/apps/${app}/machines`, {
      name: 'steady-web',
      config: hello,
    });
    machineId = created.body.id;
    const started = await fleet.call('GET', `/v1/apps/${app}/machines/${machineId}/wait`);
    expect(started.body.state).toBe('started');
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  /** True when a call answered what the fleet holds. */
  const answeredRight = ({ status, body }: { status: number; body: unknown }, path: string) => {
    if (status !== 200) return false;
    if (path === '/v1/apps')
      return (body as { apps: { name: string }[] }).apps.some((one) => one.name === app);
    return (body as { id: string; name: string; state: string }[]).some(
      (one) => one.id === machineId && one.name === 'steady-web' && one.state === 'started',
    );
  };

  it('restarts twice under a steady stream of API calls without failing one', async () => {
    const flaps = [
      ...socketActivate,
      process.execPath,
      join(here, '..', 'dist', 'main.js'),
      ...['--listen', '127.0.0.1:0', '--corrosion-url', fleet.corrosion],
    ];
    const holder = spawn('python3', [join(here, 'fixtures', 'socket-holder.py')], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, FLEET_API_TOKEN: operatorToken, FLYD_TOKEN: flydToken },
    });
    const lines = createInterface({ input: holder.stdout });
    const waitFor = (pattern: RegExp) =>
      new Promise<RegExpExecArray>((resolve) => {
        const onLine = (line: string) => {
          const match = pattern.exec(line);
          if (!match) return;
          lines.off('line', onLine);
          resolve(match);
        };
        lines.on('line', onLine);
      });
    const port = Number((await waitFor(/^port (\d+)$/))[1]);
    // Under systemd-socket-activate a flaps starts at the first connection it sees: the stream
    // runs before each start, so its calls both wake it and wait for it.
    const start = async () => {
      const listening = waitFor(/"event":"listening"/);
      holder.stdin.write(`start ${JSON.stringify(flaps)}\n`);
      await listening;
    };
    const stop = async () => {
      const stopped = waitFor(/^stopped (-?\d+)$/);
      holder.stdin.write('stop\n');
      expect((await stopped)[1]).toBe('0');
    };
    let running = true;
    const failures: string[] = [];
    let calls = 0;
    const stream = (async () => {
      const paths = ['/v1/apps', `/v1/apps/${app}/machines`];
      while (running) {
        const path = present(paths[calls++ % paths.length], 'paths[calls++ % paths.length]');
        const answer = await callOnce(port, path);
        if (!answeredRight(answer, path))
          failures.push(`${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    // Each phase lasts until the stream has made a few calls of its own, however slow the
    // machine is, so the stream certainly runs against every flaps and across every restart.
    const moreCalls = async (count: number) => {
      const target = calls + count;
      while (calls < target) await new Promise((resolve) => setTimeout(resolve, 10));
    };
    try {
      await start();
      await moreCalls(8);
      for (let restart = 0; restart < 2; restart++) {
        await stop();
        await start();
        await moreCalls(8);
      }
    } finally {
      running = false;
      await stream;
      holder.stdin.end();
      await new Promise((resolve) => holder.once('exit', resolve));
    }
    expect(calls).toBeGreaterThanOrEqual(24);
    expect(failures).toEqual([]);
  }, 60_000);
});
