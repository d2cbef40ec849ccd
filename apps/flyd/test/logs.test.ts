import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callExpecting } from './expect-status.js';
import { call, FlydFixture } from './flyd-fixture.js';

// Prints `line-0` … `line-1499`, then exits.
const fifteenHundred = `for (let n = 0; n < 1500; n++) console.log('line-' + n);`;
// 16 MB in 1 KiB lines, honouring stdout's backpressure, then DONE and exit 0. More than the
// kernel buffers a stalled collector's connection (a send buffer of up to 4 MB here, tcp_wmem):
// with 4 MB the whole output could fit before the first write pushed back, and nothing dropped.
const chatty = `const line = 'x'.repeat(1023) + '\\n'; let n = 0;
function write() { while (n < 16384) { n++; if (!process.stdout.write(line)) return process.stdout.once('drain', write); }
  process.stdout.write('DONE\\n', () => process.exit(0)); }
write();`;

// 256 MB without a newline, then DONE on a line of its own; it stays up.
const endless = `const chunk = 'x'.repeat(1 << 20); let n = 0;
function write() { while (n < 256) { n++; if (!process.stdout.write(chunk)) return process.stdout.once('drain', write); }
  process.stdout.write('\\nDONE\\n', () => setInterval(() => {}, 1000)); }
write();`;

/** flyd's resident memory in kB. */
function rssKb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

/** The sum of a counter's samples on /metrics (0 when it has none yet). */
async function counter(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

const exitsAfter = (script: string) => ({
  image: 'hello',
  init: { exec: ['node', '-e', script] },
  restart: { policy: 'no' },
});

// Seed 003: a machine's output is kept as a bounded ring of its last lines, in order, and a log
// collector that never reads makes flyd drop lines (counted on /metrics), never wedge the machine.
describe("a machine's output", () => {
  const fixtures: FlydFixture[] = [];
  const sockets: Socket[] = [];
  const stalled = createServer((socket) => {
    socket.pause(); // never read: the kernel buffers fill and flyd's writes push back
    sockets.push(socket);
  });
  beforeAll(() => new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve)));
  afterAll(async () => {
    for (const fixture of fixtures) await fixture.close();
    for (const socket of sockets) socket.destroy();
    stalled.close();
  });
  const flyd = async (flags: string[] = []) => {
    const fixture = new FlydFixture(flags);
    fixtures.push(fixture);
    await fixture.startCorrosion();
    return fixture.startFlyd();
  };

  it('keeps the last 1,000 lines, in order', async () => {
    const base = await flyd();
    const created = await call(base, 'POST', '/v1/machines', {
      app: 'logs',
      config: exitsAfter(fifteenHundred),
    });
    const id = present(created, 'the create answer').body.id as string;
    expect(
      (await call(base, 'GET', `/v1/machines/${id}/wait?state=stopped&timeout=30`))?.status,
    ).toBe(200);
    // The process's exit can come before the end of its pipes: read until the last line is in.
    const lines = await until('the last line in the ring', async () => {
      const ring = present(await call(base, 'GET', `/v1/machines/${id}/logs`), 'an answer')
        .body as unknown as {
        stream: string;
        message: string;
      }[];
      return ring.at(-1)?.message === 'line-1499' ? ring : undefined;
    });
    expect(lines).toHaveLength(1_000);
    expect(lines.map((line) => line.message)).toEqual(
      Array.from({ length: 1_000 }, (_, index) => `line-${500 + index}`),
    );
    expect(new Set(lines.map((line) => line.stream))).toEqual(new Set(['stdout']));
  });

  it('holds a line without end to a bounded size, with or without a log sink', async () => {
    const sinkPort = (stalled.address() as { port: number }).port;
    for (const flags of [[], ['--log-sink', `127.0.0.1:${sinkPort}`]]) {
      const base = await flyd(flags);
      const pid = present(present(fixtures.at(-1), 'the fixture').flyd?.child.pid, 'flyd pid');
      const before = rssKb(pid);
      const config = { ...exitsAfter(endless), restart: { policy: 'no' } };
      const id = present(
        await call(base, 'POST', '/v1/machines', { app: 'logs', config }),
        'an answer',
      ).body.id as string;
      const lines = await until('DONE in the ring', async () => {
        const ring = present(await call(base, 'GET', `/v1/machines/${id}/logs`), 'an answer')
          .body as unknown as {
          message: string;
        }[];
        return ring.at(-1)?.message === 'DONE' ? ring : undefined;
      });
      expect(lines.at(-2)?.message.length).toBeLessThanOrEqual(8_193); // cut, with its mark
      // 256 MB went through; flyd kept a bounded piece of it (35-55 MB of growth is garbage not yet
      // collected; buffering the line whole grew it by 450 MB).
      expect(rssKb(pid) - before, flags.join(' ') || 'no sink').toBeLessThan(192 * 1024);
      expect((await call(base, 'DELETE', `/v1/machines/${id}?kill=true`))?.status).toBe(200);
    }
  }, 120_000);

  it('keeps a last line without a newline, in the ring and at a log collector', async () => {
    const received: { machine: string; stream: string; message: string }[] = [];
    const collector = createServer((socket) => {
      let pending = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        pending += chunk;
        const lines = pending.split('\n');
        pending = present(lines.pop(), 'lines.pop()');
        for (const line of lines) received.push(JSON.parse(line));
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    try {
      const collectorPort = (collector.address() as { port: number }).port;
      for (const flags of [[], ['--log-sink', `127.0.0.1:${collectorPort}`]]) {
        const base = await flyd(flags);
        const script = `process.stdout.write('one\\ntwo\\nlast words', () => process.exit(0));`;
        const id = (
          await callExpecting(base, 'POST', '/v1/machines', {
            app: 'logs',
            config: exitsAfter(script),
          })
        ).body.id as string;
        await callExpecting(base, 'GET', `/v1/machines/${id}/wait?state=stopped&timeout=30`);
        // The process's exit can come before the end of its pipes: read until the ring has 3
        // lines, or (a missing line being the failure) up to the poll's bound.
        const readRing = async () =>
          present(await call(base, 'GET', `/v1/machines/${id}/logs`), 'an answer')
            .body as unknown as {
            message: string;
          }[];
        const ring = await until('three lines in the ring', async () => {
          const lines = await readRing();
          return lines.length >= 3 ? lines : undefined;
        }).catch(readRing);
        expect(
          ring.map((line) => line.message),
          flags.join(' ') || 'no sink',
        ).toEqual(['one', 'two', 'last words']);
        if (flags.length === 0) continue;
        const shipped = await until('three lines at the collector', async () => {
          const ours = received.filter((line) => line.machine === id);
          return ours.length === 3 ? ours : undefined;
        });
        expect(shipped.map((line) => [line.stream, line.message])).toEqual([
          ['stdout', 'one'],
          ['stdout', 'two'],
          ['stdout', 'last words'],
        ]);
      }
    } finally {
      collector.close();
    }
  });

  it('counts the lines it drops for a wedged log sink on /metrics, and the machine finishes', async () => {
    const sinkPort = (stalled.address() as { port: number }).port;
    const base = await flyd([
      '--log-sink',
      `127.0.0.1:${sinkPort}`,
      '--log-write-timeout-ms',
      '100',
    ]);
    const droppedBefore = await counter(base, 'flyd_log_lines_dropped_total');
    const timeoutsBefore = await counter(base, 'flyd_log_sink_timeouts_total');
    const created = await call(base, 'POST', '/v1/machines', {
      app: 'logs',
      config: exitsAfter(chatty),
    });
    const id = present(created, 'the create answer').body.id as string;
    expect(
      (await call(base, 'GET', `/v1/machines/${id}/wait?state=stopped&timeout=60`))?.status,
    ).toBe(200);
    const events = present(await call(base, 'GET', `/v1/machines/${id}`), 'an answer').body
      .events as {
      request?: { exit_event?: { exit_code: number } };
    }[];
    expect(events[0]?.request?.exit_event?.exit_code).toBe(0); // it ran to its end
    // The ring gets every line (the sink did not); the pipes may end after the exit.
    await until('DONE in the ring', async () => {
      const ring = present(await call(base, 'GET', `/v1/machines/${id}/logs`), 'an answer')
        .body as unknown as {
        message: string;
      }[];
      return ring.at(-1)?.message === 'DONE' ? true : undefined;
    });
    expect(await counter(base, 'flyd_log_sink_timeouts_total')).toBeGreaterThan(timeoutsBefore);
    expect(await counter(base, 'flyd_log_lines_dropped_total')).toBeGreaterThan(droppedBefore);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/flyd_log_lines_dropped_total\{[^}]*reason="stalled"[^}]*\} [1-9]/);
  }, 90_000);
});
