import { execFile, spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Edge, startEdge, startMachine } from './relay-fixture.js';

const proxyctlMain = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  'dist',
  'control',
  'proxyctl.js',
);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real proxyctl binary. */
function proxyctl(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [proxyctlMain, ...args],
      { timeout: 20_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Opens a raw client on the control socket; `lines()` resolves with the answer lines seen until close. */
function rawClient(path: string) {
  const socket = connect(path);
  socket.setEncoding('utf8');
  let seen = '';
  socket.on('data', (chunk: string) => {
    seen += chunk;
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  return {
    socket,
    answers: () =>
      seen
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line)),
    closed,
    async waitForAnswers(count: number) {
      await until(`${count} answers`, () => seen.split('\n').length - 1 >= count);
    },
  };
}

// A real fly-proxy over a real corrosion, with its control socket in a temporary state dir:
// proxyctl answers every command from the proxy's own objects; bad input gets an error naming it.
describe('control channel and proxyctl', () => {
  let edge: Edge;
  let machine: Server;
  let stateDir: string;
  let socketPath: string;

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'ctl-'));
    socketPath = join(stateDir, 'control.sock');
    const started = await startMachine('m1');
    machine = started.server;
    edge = await startEdge(
      [
        { id: 'm1', app: 'web', addr: started.addr, region: 'ams' },
        { id: 'm2', app: 'web', addr: '127.0.0.1:1', region: 'fra' },
      ],
      { region: 'ams', args: ['--state-dir', stateDir] },
    );
    await edge.routable('web.fleet.test');
  });

  afterAll(async () => {
    await edge?.stop();
    machine?.closeAllConnections();
    await new Promise((resolve) => machine?.close(resolve));
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('answers status, catalog, locks and connections, human-readable and as JSON', async () => {
    const status = await proxyctl(['--socket', socketPath, 'status', '--json']);
    expect(status.code).toBe(0);
    const answer = JSON.parse(status.stdout);
    expect(answer.ok).toBe(true);
    expect(answer.result).toMatchObject({ pid: edge.proxy.child.pid, mode: 'edge', region: 'ams' });
    expect(answer.result.catalog.ready).toBe(true);

    const human = await proxyctl(['--state-dir', stateDir, 'status']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^region: ams$/m);

    const catalog = JSON.parse(
      (await proxyctl(['--socket', socketPath, 'catalog', 'web', '--json'])).stdout,
    );
    expect(catalog.result.app).toBe('web');
    const ids = catalog.result.machines.map((each: { id: string }) => each.id).sort();
    expect(ids).toEqual(['m1', 'm2']);
    expect(catalog.result.machines[0]).toMatchObject({ state: 'started', load: 0 });
    expect(catalog.result.machines[0].services[0]).toMatchObject({ internalPort: 8080, band: 0 });
    expect(catalog.result.route.kind).toBe('ok');
    const catalogText = await proxyctl(['--socket', socketPath, 'catalog', 'web']);
    expect(catalogText.stdout).toMatch(/^m1\s+started\s+ams/m);
    expect(catalogText.stdout).toMatch(/^route: m1 \(band 0\) > m2/m);

    const locks = JSON.parse((await proxyctl(['--socket', socketPath, 'locks', '--json'])).stdout);
    expect(locks.result.catalog).toMatchObject({ name: 'catalog', holders: [], queued: [] });
    // The app's load was a labelled write with the app as context: the last writer says so.
    expect(locks.result.catalog.lastWriter).toMatchObject({ mode: 'write' });
    expect(locks.result.catalog.lastWriter.label).toEqual(expect.any(String));
    const locksText = await proxyctl(['--socket', socketPath, 'locks']);
    expect(locksText.stdout).toMatch(/^holders: 0$/m);
    expect(locksText.stdout).toMatch(/^last writer: write /m);

    // A request just before: pooled connections idle past --upstream-idle-timeout-ms (3 s) are
    // closed, and the proxyctl runs above can take that long on a loaded machine.
    await edge.routable('web.fleet.test');
    const connections = JSON.parse(
      (await proxyctl(['--socket', socketPath, 'connections', '--json'])).stdout,
    );
    expect(connections.result.http1).toMatchObject({ connections: expect.any(Number) });
    expect(connections.result.upstreams.machines).toBeGreaterThanOrEqual(1);

    const quarantine = JSON.parse(
      (await proxyctl(['--socket', socketPath, 'quarantine', '--json'])).stdout,
    );
    expect(quarantine.result).toEqual({ quarantined: [] });
  });

  it('changes the log level at runtime and names a bad level', async () => {
    const set = await proxyctl(['--socket', socketPath, 'loglevel', 'debug']);
    expect(set).toMatchObject({ code: 0 });
    expect(set.stdout).toBe('log level: debug (was error)\n');
    const shown = JSON.parse(
      (await proxyctl(['--socket', socketPath, 'loglevel', '--json'])).stdout,
    );
    expect(shown.result.level).toBe('debug');
    const bad = await proxyctl(['--socket', socketPath, 'loglevel', 'loud']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/CONTROL_ERR_BAD_LEVEL: unknown log level "loud"/);
    await proxyctl(['--socket', socketPath, 'loglevel', 'error']);
  });

  it('names an unknown command, a wrong argument count and an unknown app', async () => {
    const unknown = await proxyctl(['--socket', socketPath, 'reboot']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/CONTROL_ERR_UNKNOWN_COMMAND: unknown command "reboot"/);
    const noArgs = await proxyctl(['--socket', socketPath, 'catalog']);
    expect(noArgs.stderr).toMatch(/CONTROL_ERR_BAD_ARGUMENTS: "catalog" takes 1 argument/);
    const noApp = await proxyctl(['--socket', socketPath, 'catalog', 'nope', '--json']);
    expect(noApp.code).toBe(1);
    expect(JSON.parse(noApp.stdout).error).toMatchObject({ code: 'CONTROL_ERR_NO_APP' });
  });

  it('refuses bad usage and says when no socket is there', async () => {
    const usage = await proxyctl(['status', '--bogus']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/bogus/);
    const missing = await proxyctl(['--state-dir', join(stateDir, 'nowhere'), 'status']);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/no control socket at .*nowhere\/control\.sock/);
  });

  it('answers bad lines with an error and keeps the connection; cuts an overlong line', async () => {
    const client = rawClient(socketPath);
    client.socket.write('not json\n{"command":7}\n{"command":"status"}\n');
    await client.waitForAnswers(3);
    const [notJson, notString, status] = client.answers();
    expect(notJson.error.code).toBe('CONTROL_ERR_BAD_REQUEST');
    expect(notString.error.code).toBe('CONTROL_ERR_BAD_REQUEST');
    expect(status.ok).toBe(true);
    client.socket.write('x'.repeat(10_000));
    await client.closed;
    expect(client.answers().at(-1).error.code).toBe('CONTROL_ERR_LINE_TOO_LONG');
  });

  it('closes a client that sends more requests than the bound without reading answers', async () => {
    const client = rawClient(socketPath);
    client.socket.write('{"command":"help"}\n'.repeat(20));
    await client.closed;
    const answers = client.answers();
    expect(answers.slice(0, -1).every((answer) => answer.ok)).toBe(true);
    expect(answers.at(-1).error.code).toBe('CONTROL_ERR_TOO_MANY_PENDING');
    expect(answers.length).toBeLessThanOrEqual(17);
  });

  it('bounds the clients connected at once', async () => {
    const clients = Array.from({ length: 16 }, () => rawClient(socketPath));
    try {
      // Each of the 16 is being served once it has an answer.
      for (const client of clients) client.socket.write('{"command":"help"}\n');
      for (const client of clients) await client.waitForAnswers(1);
      const extra = rawClient(socketPath);
      await extra.closed;
      expect(extra.answers()[0].error.code).toBe('CONTROL_ERR_TOO_MANY_CLIENTS');
    } finally {
      for (const client of clients) client.socket.destroy();
    }
  });

  it('stops answering while the proxy is stopped, and proxyctl says so within its timeout', async () => {
    const pid = present(edge.proxy.child.pid, 'its pid');
    process.kill(pid, 'SIGSTOP');
    try {
      const wedged = await proxyctl(['--socket', socketPath, '--timeout-ms', '500', 'status']);
      expect(wedged.code).toBe(3);
      expect(wedged.stderr).toMatch(/no answer on .* within 500 ms/);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect((await proxyctl(['--socket', socketPath, 'status'])).code).toBe(0);
  });
});

// The socket file's lifecycle: one left by a killed process is replaced, one a live process
// answers on is never taken, and a proxy that stops removes its own.
describe('control socket file', () => {
  const dirs: string[] = [];
  const cleanups: (() => Promise<void>)[] = [];

  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  const newStateDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctl-'));
    dirs.push(dir);
    return dir;
  };

  it('replaces a stale socket left by a killed process and removes its own at shutdown', async () => {
    const stateDir = newStateDir();
    const socketPath = join(stateDir, 'control.sock');
    // A process that listens on the path and dies by SIGKILL leaves the file with nobody behind it.
    const holder = spawn(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(socketPath)}, () => console.log('up'))`,
    ]);
    await new Promise((resolve) => holder.stdout.once('data', resolve));
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.once('exit', resolve));
    expect(lstatSync(socketPath).isSocket()).toBe(true);

    const edge = await startEdge([{ id: 'm1', app: 'web', addr: '127.0.0.1:1', region: 'ams' }], {
      region: 'ams',
      args: ['--state-dir', stateDir],
    });
    cleanups.push(() => edge.stop());
    const status = await proxyctl(['--socket', socketPath, 'status', '--json']);
    expect(JSON.parse(status.stdout).result.pid).toBe(edge.proxy.child.pid);
    await edge.proxy.stop();
    expect(existsSync(socketPath)).toBe(false);
  });

  it('leaves a socket a live process answers on alone, and the proxy still serves', async () => {
    const stateDir = newStateDir();
    const socketPath = join(stateDir, 'control.sock');
    const otherClients = new Set<Socket>();
    const other = createServer((socket) => {
      otherClients.add(socket);
      socket.on('error', () => undefined); // the proxy's probe hangs up at once
      socket.end('{"ok":true,"result":"the other one"}\n');
    });
    await new Promise<void>((resolve) => other.listen(socketPath, resolve));
    cleanups.push(async () => {
      for (const socket of otherClients) socket.destroy();
      await new Promise<void>((resolve) => other.close(() => resolve()));
    });
    const machine = await startMachine('m1');
    cleanups.push(async () => {
      machine.server.closeAllConnections();
      await new Promise<void>((resolve) => machine.server.close(() => resolve()));
    });

    const edge = await startEdge([{ id: 'm1', app: 'web', addr: machine.addr, region: 'ams' }], {
      region: 'ams',
      args: ['--state-dir', stateDir],
    });
    cleanups.push(() => edge.stop());
    await edge.routable('web.fleet.test');
    const status = await proxyctl(['--socket', socketPath, 'status', '--json']);
    expect(JSON.parse(status.stdout).result).toBe('the other one');
    await edge.proxy.stop();
    expect(lstatSync(socketPath).isSocket()).toBe(true);
  });
});
