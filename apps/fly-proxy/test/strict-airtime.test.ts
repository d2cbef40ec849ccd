import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  airtimeOf,
  measure,
  type Reader,
  readHttp2,
  readTcp,
  sleep,
  startStreamingMachine,
  startTcpFirehose,
  until,
} from './airtime-fixture.js';
import { type Edge, freePort, startEdge } from './relay-fixture.js';

const proxyMain = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');
const strictRate = 65_536;

/** At most the strict rate (half again for timer slack), its one-second burst, what sockets hold. */
function expectAboutStrictRate(window: { bytes: number; seconds: number }): void {
  expect(window.bytes).toBeLessThan(strictRate * 1.5 * window.seconds + strictRate + 1_048_576);
  expect(window.bytes).toBeGreaterThan((strictRate / 8) * window.seconds); // slowed, not stopped
}

// Seed 004: a second proxy forced beside the active one runs Airtime with strict limits on every
// protocol it relays, not only HTTP/1.1: an endless HTTP/2 (h2c) download and an endless raw TCP
// public port are each slowed to about the strict rate, and `proxyctl airtime` says `strict`.
describe('a strict second instance', () => {
  let edge: Edge;
  let machine: Awaited<ReturnType<typeof startStreamingMachine>>;
  let firehose: Awaited<ReturnType<typeof startTcpFirehose>>;
  let second: ChildProcess | undefined;
  let rawPort: number;
  const readers: Reader[] = [];

  beforeAll(async () => {
    rawPort = await freePort();
    machine = await startStreamingMachine();
    firehose = await startTcpFirehose();
    edge = await startEdge(
      [
        { id: 'web-1', app: 'web', addr: machine.addr, region: 'ams' },
        {
          id: 'raw-1',
          app: 'raw',
          addr: firehose.addr,
          region: 'ams',
          ports: [{ port: rawPort, handlers: [] }],
        },
      ],
      { region: 'ams' },
    );
  });

  afterAll(async () => {
    for (const reader of readers) reader.close();
    const running = second;
    if (running && running.exitCode === null) {
      running.kill('SIGTERM');
      await new Promise((resolve) => running.once('exit', resolve));
    }
    await edge?.stop();
    machine?.server.closeAllConnections();
    await new Promise((resolve) => machine?.server.close(resolve));
    await new Promise((resolve) => firehose?.server.close(resolve));
  });

  it('slows HTTP/2 and raw TCP to the strict rate too, and says strict', async () => {
    const child = spawn(
      process.execPath,
      [
        proxyMain,
        ...['--listen', '127.0.0.1:0', '--corrosion-url', edge.corrosionUrl],
        ...['--domain', 'fleet.test', '--region', 'ams', '--state-dir', join(edge.dir, 'proxy')],
        ...['--strict-second-instance', '--strict-app-bytes-per-second', String(strictRate)],
        ...['--tcp-bind', '127.0.0.1'], // the active proxy opens no public port here
      ],
      { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, LOG_LEVEL: 'info' } },
    );
    let output = '';
    second = child;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    const proxyUrl = await until('the second proxy listening', async () => {
      if (child.exitCode !== null) throw new Error(`the second proxy exited: ${output}`);
      return /"listener":"proxy","url":"([^"]+)"/.exec(output)?.[1];
    });
    await until('web routable through the second proxy', async () => {
      const answer = await request(`${proxyUrl}/bytes/10`, { headers: { host: 'web.fleet.test' } });
      await answer.body.dump();
      return answer.statusCode === 200 ? true : undefined;
    });
    const h2 = readHttp2(proxyUrl, 'web.fleet.test');
    readers.push(h2);
    // The public port opens once the proxy has followed the services: retry until bytes come.
    const tcp = await until('the raw public port streaming', async () => {
      const reader = readTcp(rawPort);
      readers.push(reader);
      await sleep(300);
      if (reader.bytes() > 0) return reader;
      reader.close();
      return undefined;
    });
    const [h2Window, tcpWindow] = await Promise.all([
      measure(h2, 1_000, 3_000),
      measure(tcp, 1_000, 3_000),
    ]);
    expectAboutStrictRate(h2Window);
    expectAboutStrictRate(tcpWindow);

    const airtime = await airtimeOf(join(edge.dir, 'proxy', `second-${second.pid}.sock`));
    expect(airtime.strict?.holder).toContain(`pid ${edge.proxy.child.pid}`);
    for (const app of ['web', 'raw'])
      expect(airtime.apps.find((each) => each.app === app)).toMatchObject({
        rateBytesPerSecond: strictRate,
        throttled: true,
        reason: 'strict',
      });
  });
});
