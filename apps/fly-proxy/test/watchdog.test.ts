import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type ServerProcess, startServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { askControl } from '../src/control/client.js';
import {
  isAlive,
  processGone,
  startWebOnCorrosion,
  watchdogMain,
  watchdogStatus,
} from './watchdog-fixture.js';

const unansweredSeconds = 3;

// The watchdog supervises a real fly-proxy over a real corrosion. A proxy wedged from outside
// (SIGSTOP: it still accepts on its socket but never answers) is reported, killed and replaced
// within N+2 s; one that dies is replaced; stopping the watchdog, or killing it, leaves no proxy.
describe('fly-proxy-watchdog', () => {
  let web: Awaited<ReturnType<typeof startWebOnCorrosion>>;
  const dirs: string[] = [];
  const watchdogs: ServerProcess[] = [];
  const proxyPids: number[] = [];

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wd-'));
    dirs.push(dir);
    web = await startWebOnCorrosion(dir);
  });

  afterEach(async () => {
    for (const watchdog of watchdogs.splice(0)) await watchdog.stop(2_000);
    for (const pid of proxyPids.splice(0)) {
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
  });

  afterAll(async () => {
    await web?.stop();
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
        ...['--listen', '127.0.0.1:0', '--corrosion-url', web.api],
        ...['--domain', 'fleet.test', '--region', 'ams'],
      ],
      // info: the proxy's lines reach the incident's log tail
      env: { ...process.env, LOG_LEVEL: 'info' },
      listeners: ['proxy', 'admin', 'watchdog'],
    });
    watchdogs.push(watchdog);
    const status = () => watchdogStatus(stateDir);
    /** The next proxy answering (not `other`), with its pid noted for the cleanup. */
    const running = async (other?: number) => {
      const now = await until('a proxy answering', () => {
        const current = status();
        return current.state === 'running' && current.proxyPid !== other ? current : undefined;
      });
      const proxyPid = present(now.proxyPid, 'the pid of a running proxy');
      proxyPids.push(proxyPid);
      return { ...now, proxyPid };
    };
    const first = await running();
    return { watchdog, stateDir, status, running, first };
  }

  it('reports, kills and restarts a wedged proxy within N+2 s and counts it', async () => {
    const { watchdog, stateDir, status, running, first } = await startWatchdog();
    const wedgedPid = first.proxyPid;
    const wedgedAtMs = Date.now();
    process.kill(wedgedPid, 'SIGSTOP');

    const next = await running(wedgedPid);
    const restartedAfterMs = Date.parse(present(next.proxyStartedAt, 'its start')) - wedgedAtMs;
    expect(restartedAfterMs).toBeLessThanOrEqual((unansweredSeconds + 2) * 1000);
    expect(isAlive(wedgedPid)).toBe(false);
    expect(next.restarts).toBe(1);
    expect(next.restartsByReason).toEqual({ unanswered: 1, exited: 0 });

    // The evidence beside each other: the facts, the last lock snapshot, the log tail, the report.
    const incident = present(next.lastIncident, 'the incident directory');
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
    process.kill(first.proxyPid, 'SIGKILL');
    const next = await running(first.proxyPid);
    expect(next.restartsByReason).toEqual({ unanswered: 0, exited: 1 });
    const incident = present(next.lastIncident, 'the incident directory');
    const facts = JSON.parse(readFileSync(join(incident, 'incident.json'), 'utf8'));
    expect(facts).toMatchObject({ reason: 'exited', exit: { signal: 'SIGKILL' }, report: null });

    await watchdog.stop();
    expect(watchdog.child.exitCode).toBe(0);
    await processGone(next.proxyPid, 5_000);
    expect(existsSync(join(stateDir, 'control.sock'))).toBe(false);
  });

  it('backs off between restarts that follow each other', async () => {
    const backoffMsMin = 2_000;
    const { status, running, first } = await startWatchdog([
      '--backoff-ms-min',
      String(backoffMsMin),
    ]);
    // The first restart after a stable start is immediate; the next one in a row waits.
    process.kill(first.proxyPid, 'SIGKILL');
    const second = await running(first.proxyPid);
    expect(second.nextBackoffMs).toBe(backoffMsMin);
    const killedAtMs = Date.now();
    process.kill(second.proxyPid, 'SIGKILL');
    const third = await running(second.proxyPid);
    const thirdStartedMs = Date.parse(present(third.proxyStartedAt, 'its start'));
    expect(thirdStartedMs - killedAtMs).toBeGreaterThanOrEqual(backoffMsMin);
    expect(third.nextBackoffMs).toBe(2 * backoffMsMin);
    expect(status().restartsByReason.exited).toBe(2);
  });

  it('stops a wedged proxy too when it is stopped itself', async () => {
    const { watchdog, first } = await startWatchdog(['--unanswered-seconds', '600']);
    process.kill(first.proxyPid, 'SIGSTOP');
    await watchdog.stop();
    await processGone(first.proxyPid, 15_000);
  });

  it('a watchdog killed outright takes its proxy with it', async () => {
    const { watchdog, first } = await startWatchdog();
    watchdog.child.kill('SIGKILL');
    await watchdog.exited;
    await processGone(first.proxyPid, 15_000);
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
      args: [watchdogMain, '--state-dir', stateDir, '--', '--corrosion-url', web.api],
      listeners: ['watchdog'],
      startTimeoutMs: 10_000,
    }).catch((error: Error) => error);
    expect(String(second)).toMatch(/exited \(1\).*watchdog\.lock is held by fly-proxy-watchdog/s);
  });
});
