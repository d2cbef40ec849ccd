import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as connectTls } from 'node:tls';
import { childrenByParent, type ServerProcess, startServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Load } from './load-clients.js';
import {
  isAlive,
  processGone,
  proxyctlMain,
  startWebOnCorrosion,
  watchdogMain,
  watchdogStatus,
} from './watchdog-fixture.js';

/** One HTTP/1.1 request over a new TLS connection, resuming `session` when given. */
function tlsGet(port: number, ca: string, session?: Buffer) {
  return new Promise<{ session?: Buffer; reused: boolean; status: number; requestId: string }>(
    (resolve, reject) => {
      const socket = connectTls({
        host: '127.0.0.1',
        port,
        servername: 'web.fleet.test',
        ca,
        session,
        ALPNProtocols: ['http/1.1'],
      });
      let ticket: Buffer | undefined;
      let seen = '';
      socket.on('session', (value: Buffer) => {
        ticket = value;
      });
      socket.once('secureConnect', () =>
        socket.write('GET / HTTP/1.1\r\nhost: web.fleet.test\r\nconnection: close\r\n\r\n'),
      );
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => {
        seen += chunk;
      });
      socket.once('error', reject);
      socket.once('end', () => {
        const requestId = /fly-request-id: (\S+)/i.exec(seen)?.[1] ?? '';
        resolve({
          session: ticket,
          reused: socket.isSessionReused(),
          status: Number(seen.split(' ')[1]),
          requestId,
        });
        socket.destroy();
      });
    },
  );
}

const processTag = (requestId: string) => requestId.split('-')[1]?.slice(0, 6);

// A real watchdog runs real proxy generations over a real corrosion. Restarts (SIGHUP and
// `proxyctl restart`) under continuous load from keep-alive and new-connection clients lose no
// request; a TLS session resumes on the next generation and after a restart of the watchdog
// itself (ticket keys kept in the state dir); SIGTERM to
// the watchdog in the middle of a handoff leaves no process behind. The tests share one watchdog
// and run in order; the last one stops it.
describe('restarts without dropping', () => {
  let dir: string;
  let stateDir: string;
  let web: Awaited<ReturnType<typeof startWebOnCorrosion>>;
  let watchdog: ServerProcess;
  const seenPids = new Set<number>();

  const status = () => watchdogStatus(stateDir);
  const watchChildren = setInterval(() => {
    if (watchdog?.child.pid !== undefined)
      for (const pid of childrenByParent().get(watchdog.child.pid) ?? []) seenPids.add(pid);
  }, 20);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'handoff-'));
    stateDir = join(dir, 'state');
    web = await startWebOnCorrosion(dir);
    writeFileSync(join(dir, 'fleet.key'), 'handoff-test-fleet-key-0123456789');
    await startWatchdog();
  });

  /** Starts a watchdog on the test's state directory and waits for its proxy to answer. */
  async function startWatchdog() {
    watchdog = await startServerProcess({
      command: process.execPath,
      args: [
        watchdogMain,
        ...['--state-dir', stateDir, '--stop-grace-ms', '5000'],
        '--',
        ...['--listen', '127.0.0.1:0', '--corrosion-url', web.api],
        ...['--domain', 'fleet.test', '--region', 'ams', '--drain-grace-ms', '1000'],
        ...['--tls-listen', '127.0.0.1:0', '--fleet-key-file', join(dir, 'fleet.key')],
        ...['--ca-cert-file', join(dir, 'ca.pem'), '--ca-key-file', join(dir, 'ca.key')],
      ],
      env: { ...process.env, LOG_LEVEL: 'warn' },
      listeners: ['proxy', 'admin', 'tls', 'watchdog'],
    });
    await until('the first proxy answering', () => status().state === 'running');
  }

  /** A request over TLS answered 200 (retried while the certificate or the app loads). */
  async function tlsGetOk(session?: Buffer) {
    const port = Number(new URL(present(watchdog.urls.tls, 'the TLS listener')).port);
    const ca = readFileSync(join(dir, 'ca.pem'), 'utf8');
    const answer = await until(
      'a 200 over TLS',
      () => tlsGet(port, ca, session),
      (reply) => reply.status === 200,
    );
    expect(answer.status).toBe(200);
    return answer;
  }

  afterAll(async () => {
    clearInterval(watchChildren);
    await watchdog?.stop();
    for (const pid of seenPids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    await web?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Restarts by `trigger` and waits until the new generation serves and the old one exited. */
  async function restart(trigger: () => unknown) {
    const before = status();
    await trigger();
    const after = await until('the handoff', () => {
      const now = status();
      return now.handoffs === before.handoffs + 1 ? now : undefined;
    });
    expect(after.proxyPid).not.toBe(before.proxyPid);
    await processGone(present(before.proxyPid, 'the serving proxy'));
    return after;
  }

  it('loses no request across SIGHUP and proxyctl restart under continuous load', {
    timeout: 120_000,
  }, async () => {
    const port = Number(new URL(present(watchdog.urls.proxy, 'the proxy listener')).port);
    const load = new Load(port, 'web.fleet.test', { keepAlive: 4, fresh: 4 });
    try {
      await load.further(200);
      await restart(() => {
        watchdog.child.kill('SIGHUP');
      });
      await load.further(200);
      await restart(
        () =>
          new Promise((resolve, reject) =>
            execFile(
              process.execPath,
              [proxyctlMain, '--state-dir', stateDir, 'restart'],
              (error, stdout) => (error ? reject(error) : resolve(stdout)),
            ),
          ),
      );
      await load.further(200);
    } finally {
      await load.stop();
    }
    expect(load.errors).toEqual([]);
    expect(load.nonOk).toBe(0);
    expect(load.processTags.size).toBe(3); // three generations answered
    expect(status().drainingPids).toEqual([]);
    // The watchdog holds the ticket keys for the generations, readable by its user only.
    expect(statSync(join(stateDir, 'tls-ticket-keys')).mode & 0o777).toBe(0o600);
  });

  it('resumes a TLS session of one generation on the next (shared ticket keys)', async () => {
    const first = await tlsGetOk();
    expect(first.session).toBeDefined();
    await restart(() => {
      watchdog.child.kill('SIGHUP');
    });
    const resumed = await tlsGetOk(first.session);
    expect(processTag(resumed.requestId)).not.toBe(processTag(first.requestId));
    expect(resumed.reused).toBe(true);
  });

  it('resumes a TLS session across a restart of the watchdog itself (keys in the state dir)', async () => {
    // Node's cluster shares a handle's ticket keys between the generations of one watchdog; only
    // the keys file carries them over to a new watchdog (new handles, new primary).
    const first = await tlsGetOk();
    await watchdog.stop();
    expect(await watchdog.exited).toBe(0);
    await startWatchdog();
    const resumed = await tlsGetOk(first.session);
    expect(processTag(resumed.requestId)).not.toBe(processTag(first.requestId));
    expect(resumed.reused).toBe(true);
  });

  it('SIGTERM to the watchdog in the middle of a handoff leaves no process behind', async () => {
    const watchdogPid = present(watchdog.child.pid, "the watchdog's pid");
    const serving = present(status().proxyPid, 'the serving proxy');
    const handoffs = status().handoffs;
    const before = new Set(childrenByParent().get(watchdogPid));
    watchdog.child.kill('SIGHUP');
    const successor = await until('the successor started', () =>
      childrenByParent()
        .get(watchdogPid)
        ?.find((pid) => !before.has(pid)),
    );
    expect(status().handoffs).toBe(handoffs); // this handoff is still under way
    watchdog.child.kill('SIGTERM');
    expect(await watchdog.exited).toBe(0);
    for (const pid of [serving, successor, ...seenPids]) {
      await processGone(pid, 10_000);
    }
  });
});
