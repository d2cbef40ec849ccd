import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { connect as connectTcp, type Socket } from 'node:net';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { connect as connectTls, type SecureVersion } from 'node:tls';
import { present } from '@fleet/service/invariant';
import { procStat } from '@fleet/service/proc-stat';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Edge, startEdge, startMachine } from './relay-fixture.js';

const junks: Record<string, Buffer> = {
  'a record header': Buffer.from([0x17, 0x03, 0x03, 0x01]),
  'a plaintext request': Buffer.from('GET / HTTP/1.1\r\nHost: web.fleet.test\r\n\r\n'),
  '64 x A': Buffer.alloc(64, 'A'),
};

/** CPU time (user + system) a process used so far, ms. */
const cpuMs = (pid: number) => present(procStat(pid), `/proc stat of ${pid}`).cpuMs;

/**
 * A TLS client over a TCP socket whose last write — the close_notify — goes out in one TCP write
 * with `junk` after it, followed by a FIN or not.
 */
async function closeNotifyWithJunk(
  port: number,
  ca: string,
  version: SecureVersion,
  junk: Buffer,
  fin: boolean,
): Promise<{ raw: Socket; answered: Promise<string> }> {
  const raw = connectTcp(port, '127.0.0.1');
  raw.on('error', () => {});
  await new Promise((resolve) => raw.once('connect', resolve));
  let holding = false;
  const held: Buffer[] = [];
  const wire = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, done) {
      if (holding) held.push(chunk);
      else raw.write(chunk);
      done();
    },
    final(done) {
      raw.write(Buffer.concat([...held, junk])); // close_notify and the junk: one TCP write
      if (fin) raw.end();
      done();
    },
  });
  raw.on('data', (chunk) => wire.push(chunk));
  raw.on('close', () => wire.push(null));
  const client = connectTls({
    socket: wire,
    servername: 'web.fleet.test',
    ca,
    minVersion: version,
    maxVersion: version,
  });
  client.on('error', () => {});
  await new Promise((resolve) => client.once('secureConnect', resolve));
  let answer = '';
  client.setEncoding('latin1');
  client.on('data', (chunk: string) => {
    answer += chunk;
  });
  const answered = new Promise<string>((resolve) => {
    client.on('data', () => {
      if (/\r\n\r\n[\s\S]*"name":"m1"/.test(answer)) resolve(answer);
    });
  });
  client.write('POST /body HTTP/1.1\r\nHost: web.fleet.test\r\nContent-Length: 5\r\n\r\nhello');
  await answered;
  holding = true;
  client.end(); // close_notify, held back and sent with the junk
  return { raw, answered };
}

// Seed 000: close_notify followed, in the same TCP write, by bytes that are not a TLS record (or
// the start of one), with and without the TCP FIN, in TLS 1.2 and 1.3. The request before it is
// delivered, the connection is closed within a bound, and the proxy stays idle afterwards.
describe('close_notify followed by junk (seed 000)', () => {
  let edge: Edge;
  let machine: Server;
  let port: number;
  let ca: string;
  const bodies: string[] = [];

  beforeAll(async () => {
    const started = await startMachine('m1');
    machine = started.server;
    machine.on('request', (req) => {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => bodies.push(body));
    });
    edge = await startEdge([{ id: 'm1', app: 'web', addr: started.addr, region: 'ams' }], {
      region: 'ams',
      tls: true,
      // Were a connection left spinning, the guard would cut it within seconds: counted below.
      args: ['--wakeups-without-progress-max', '3', '--idle-timeout-ms', '5000'],
    });
    await edge.routable('web.fleet.test');
    port = Number(new URL(present(edge.proxy.urls.tls, 'the TLS listener')).port);
    ca = readFileSync(join(edge.dir, 'ca.pem'), 'utf8');
  });

  /** Connections the TLS listener's guard closed (idle or without progress) so far. */
  const guardCuts = async (): Promise<number> => {
    const status = (await (await request(`${edge.proxy.urls.admin}/status`)).body.json()) as {
      tls: { connections: { closed: Record<string, number> } };
    };
    const { closed } = status.tls.connections;
    return (closed.idle ?? 0) + (closed.no_progress ?? 0);
  };

  afterAll(async () => {
    await edge?.stop();
    await new Promise((resolve) => machine?.close(resolve));
  });

  const cases = (['TLSv1.2', 'TLSv1.3'] as const).flatMap((version) =>
    Object.keys(junks).flatMap((junk) => [true, false].map((fin) => ({ version, junk, fin }))),
  );

  it.each(cases)(
    '$version, $junk, FIN $fin: delivered, closed, idle',
    async ({ version, junk, fin }) => {
      const delivered = bodies.length;
      const cutsBefore = await guardCuts();
      const { raw } = await closeNotifyWithJunk(port, ca, version, present(junks[junk], junk), fin);
      expect(bodies.length).toBe(delivered + 1);
      expect(bodies.at(-1)).toBe('hello');
      const pid = present(edge.proxy.child.pid, 'its pid');
      const cpuBefore = cpuMs(pid);
      const startedAt = Date.now();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('still open after 20 s')), 20_000);
        if (raw.destroyed) resolve();
        raw.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        raw.resume();
      });
      // Closed by the TLS layer answering close_notify, not by the guard cutting a connection
      // that made no progress (which would mean it had been left "ready" and spinning).
      expect(await guardCuts()).toBe(cutsBefore);
      await new Promise((resolve) => setTimeout(resolve, 300));
      // A spinning connection would burn about as much CPU as wall time; idle burns almost none.
      expect(cpuMs(pid) - cpuBefore).toBeLessThan(Math.max(60, (Date.now() - startedAt) * 0.3));
    },
  );
});
