import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CorrosionClient } from '@fleet/corrosion-client';
import { type ServerProcess, serverMain, startServerProcess } from '@fleet/service';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { askControl } from '../src/control/client.js';
import { startMachine } from './relay-fixture.js';
import { until } from './wait.js';

const here = dirname(fileURLToPath(import.meta.url));
const corrosionMain = serverMain('@fleet/corrosion');
const watchdogMain = join(here, '..', 'dist', 'watchdog', 'main.js');
const unansweredSeconds = 3;

interface WatchdogStatus {
  state: string;
  proxyPid: number | null;
  proxyStartedAt: string | null;
  restarts: number;
  restartsByReason: { unanswered: number; exited: number };
  nextBackoffMs: number;
  lastIncident: string | null;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// The watchdog supervises a real fly-proxy over a real corrosion. A proxy wedged from outside
// (SIGSTOP: it still accepts on its socket but never answers) is reported, killed and replaced
// within N+2 s; one that dies is replaced; stopping the watchdog, or killing it, leaves no proxy.
describe('fly-proxy-watchdog', () => {
  let corrosion: ServerProcess;
  let client: CorrosionClient;
  let machine: Server;
  const dirs: string[] = [];
  const watchdogs: ServerProcess[] = [];
  const proxyPids: number[] = [];

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wd-'));
    dirs.push(dir);
    corrosion = await startServerProcess({
      command: process.execPath,
      args: [corrosionMain, 'agent', '--db', join(dir, 'c.db'), '--api-addr', '127.0.0.1:0'],
      listeners: ['api'],
      env: { ...process.env, LOG_LEVEL: 'error' },
    });
    client = new CorrosionClient({ url: corrosion.urls.api! });
    const started = await startMachine('m1');
    machine = started.server;
    await client.transaction([
      ['INSERT INTO apps (name) VALUES (?)', ['web']],
      [
        'INSERT INTO machines (id, app, state, private_addr, region) VALUES (?, ?, ?, ?, ?)',
        ['m1', 'web', 'started', started.addr, 'ams'],
      ],
      [
        'INSERT INTO services (machine_id, internal_port, app, ports) VALUES (?, ?, ?, ?)',
        ['m1', 8080, 'web', JSON.stringify([{ port: 80, handlers: ['http'] }])],
      ],
    ]);
  });

  afterEach(async () => {
    for (const watchdog of watchdogs.splice(0)) await watchdog.stop(2_000);
    for (const pid of proxyPids.splice(0)) {
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
  });

  afterAll(async () => {
    await client?.close();
    await corrosion?.stop();
    machine?.closeAllConnections();
    await new Promise((resolve) => machine?.close(resolve));
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  async function startWatchdog(extra: string[] = []) {
    const stateDir = mkdtempSync(join(tmpdir(), 'wd-'));
    dirs.push(stateDir);
    const watchdog = await startServerProcess({
      command: process.execPath,
      args: [
        watchdogMain,
        ...['--state-dir', stateDir, '--unanswered-seconds', String(unansweredSeconds)],
        ...extra,
        '--',
        ...['--listen', '127.0.0.1:0', '--corrosion-url', corrosion.urls.api!],
        ...['--domain', 'fleet.test', '--region', 'ams'],
      ],
      // info: the proxy's lines reach the incident's log tail
      env: { ...process.env, LOG_LEVEL: 'info' },
      listeners: ['proxy', 'admin', 'watchdog'],
    });
    watchdogs.push(watchdog);
    const status = () =>
      JSON.parse(readFileSync(join(stateDir, 'watchdog.json'), 'utf8')) as WatchdogStatus;
    const running = (other?: number) =>
      until('a proxy answering', () => {
        const now = status();
        return now.state === 'running' && now.proxyPid !== other ? now : undefined;
      });
    const first = await running();
    proxyPids.push(first.proxyPid!);
    return { watchdog, stateDir, status, running, first };
  }

  it('reports, kills and restarts a wedged proxy within N+2 s and counts it', async () => {
    const { watchdog, stateDir, status, running, first } = await startWatchdog();
    const wedgedPid = first.proxyPid!;
    const wedgedAtMs = Date.now();
    process.kill(wedgedPid, 'SIGSTOP');

    const next = await running(wedgedPid);
    proxyPids.push(next.proxyPid!);
    const restartedAfterMs = Date.parse(next.proxyStartedAt!) - wedgedAtMs;
    expect(restartedAfterMs).toBeLessThanOrEqual((unansweredSeconds + 2) * 1000);
    expect(isAlive(wedgedPid)).toBe(false);
    expect(next.restarts).toBe(1);
    expect(next.restartsByReason).toEqual({ unanswered: 1, exited: 0 });

    // The evidence beside each other: the facts, the last lock snapshot, the log tail, the report.
    const incident = next.lastIncident!;
    expect(dirname(incident)).toBe(join(stateDir, 'incidents'));
    const facts = JSON.parse(readFileSync(join(incident, 'incident.json'), 'utf8'));
    expect(facts).toMatchObject({ reason: 'unanswered', pid: wedgedPid, restarts: 1 });
    expect(facts.silentMs).toBeGreaterThanOrEqual(unansweredSeconds * 1000);
    expect(readdirSync(incident)).toContain(facts.report);
    const report = JSON.parse(readFileSync(join(incident, facts.report), 'utf8'));
    expect(report.header.processId).toBe(wedgedPid);
    const locks = JSON.parse(readFileSync(join(incident, 'locks.json'), 'utf8'));
    expect(locks.catalog).toMatchObject({ name: 'catalog', holders: expect.any(Array) });
    expect(readFileSync(join(incident, 'log-tail.txt'), 'utf8')).toMatch(/"control_listening"/);

    // The new proxy answers and routes; the metric counts the restart.
    const answer = await askControl(
      join(stateDir, 'control.sock'),
      { command: 'status', args: [] },
      5_000,
    );
    expect(answer).toMatchObject({ ok: true, result: { pid: next.proxyPid } });
    const metrics = await request(`${watchdog.urls.watchdog}/metrics`);
    expect(await metrics.body.text()).toMatch(
      /watchdog_restarts_total\{reason="unanswered"[^}]*\} 1/,
    );
    expect(status().restarts).toBe(1);
  });

  it('restarts a proxy that dies, and SIGTERM to the watchdog leaves no process behind', async () => {
    const { watchdog, stateDir, running, first } = await startWatchdog();
    process.kill(first.proxyPid!, 'SIGKILL');
    const next = await running(first.proxyPid!);
    proxyPids.push(next.proxyPid!);
    expect(next.restartsByReason).toEqual({ unanswered: 0, exited: 1 });
    const facts = JSON.parse(readFileSync(join(next.lastIncident!, 'incident.json'), 'utf8'));
    expect(facts).toMatchObject({ reason: 'exited', exit: { signal: 'SIGKILL' }, report: null });

    await watchdog.stop();
    expect(watchdog.child.exitCode).toBe(0);
    await until('the proxy gone', () => (isAlive(next.proxyPid!) ? undefined : true), 5_000);
    expect(existsSync(join(stateDir, 'control.sock'))).toBe(false);
  });

  it('backs off between restarts that follow each other', async () => {
    const backoffMsMin = 2_000;
    const { status, running, first } = await startWatchdog([
      '--backoff-ms-min',
      String(backoffMsMin),
    ]);
    // The first restart after a stable start is immediate; the next one in a row waits.
    process.kill(first.proxyPid!, 'SIGKILL');
    const second = await running(first.proxyPid!);
    proxyPids.push(second.proxyPid!);
    expect(second.nextBackoffMs).toBe(backoffMsMin);
    const killedAtMs = Date.now();
    process.kill(second.proxyPid!, 'SIGKILL');
    const third = await running(second.proxyPid!);
    proxyPids.push(third.proxyPid!);
    expect(Date.parse(third.proxyStartedAt!) - killedAtMs).toBeGreaterThanOrEqual(backoffMsMin);
    expect(third.nextBackoffMs).toBe(2 * backoffMsMin);
    expect(status().restartsByReason.exited).toBe(2);
  });

  it('stops a wedged proxy too when it is stopped itself', async () => {
    const { watchdog, first } = await startWatchdog(['--unanswered-seconds', '600']);
    process.kill(first.proxyPid!, 'SIGSTOP');
    await watchdog.stop();
    await until('the proxy gone', () => (isAlive(first.proxyPid!) ? undefined : true), 15_000);
  });

  it('a watchdog killed outright takes its proxy with it', async () => {
    const { watchdog, first } = await startWatchdog();
    watchdog.child.kill('SIGKILL');
    await watchdog.exited;
    await until('the proxy gone', () => (isAlive(first.proxyPid!) ? undefined : true), 15_000);
  });

  it("stops, with the proxy's message, when the proxy refuses its flags", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'wd-'));
    dirs.push(stateDir);
    const refused = await startServerProcess({
      command: process.execPath,
      args: [watchdogMain, '--state-dir', stateDir, '--', '--corrosion-url', 'ftp://nowhere'],
      listeners: ['watchdog', 'proxy'],
      startTimeoutMs: 20_000,
    }).catch((error: Error) => error);
    expect(String(refused)).toMatch(/exited \(2\)[\s\S]*--corrosion-url must be an http/);
    const status = JSON.parse(readFileSync(join(stateDir, 'watchdog.json'), 'utf8'));
    expect(status.restarts).toBe(0);
  });

  it('refuses a --state-dir meant for the proxy and a second watchdog on the same state dir', async () => {
    const usage = await startServerProcess({
      command: process.execPath,
      args: [watchdogMain, '--', '--state-dir', '/tmp/x'],
      listeners: ['watchdog'],
      startTimeoutMs: 10_000,
    }).catch((error: Error) => error);
    expect(String(usage)).toMatch(/exited \(2\).*\n.*give --state-dir to the watchdog/s);
    const { stateDir } = await startWatchdog();
    const second = await startServerProcess({
      command: process.execPath,
      args: [watchdogMain, '--state-dir', stateDir, '--', '--corrosion-url', corrosion.urls.api!],
      listeners: ['watchdog'],
      startTimeoutMs: 10_000,
    }).catch((error: Error) => error);
    expect(String(second)).toMatch(/exited \(1\).*watchdog\.lock is held by fly-proxy-watchdog/s);
  });
});
