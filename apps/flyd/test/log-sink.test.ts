import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sampleImagesDir } from '@fleet/sample-images';
import { type ServerProcess, serverMain, startServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { afterAll, describe, expect, it } from 'vitest';
import { passable } from './flyd-fixture.js';

const here = dirname(fileURLToPath(import.meta.url));
const env = { ...process.env, LOG_LEVEL: 'error', FLYD_TOKEN: 't' };
// 10 MB of output in 1 KiB lines, honouring stdout's backpressure, then DONE and exit 0.
const chatty = `const line = 'x'.repeat(1023) + '\\n'; let n = 0;
function write() { while (n < 10240) { n++; if (!process.stdout.write(line)) return process.stdout.once('drain', write); }
  process.stdout.write('DONE\\n', () => process.exit(0)); }
write();`;

// Seed 003: a machine writing 10 MB while the log collector stalls (accepts, never reads) is held
// back for at most the write timeout at a time, finishes, and flyd warns and counts it.
describe('a wedged log sink', () => {
  const sockets: Socket[] = [];
  const stalled = createServer((socket) => {
    socket.pause(); // never read: the kernel buffers fill and flyd's writes push back
    sockets.push(socket);
  });
  const servers: ServerProcess[] = [];
  const dir = passable(mkdtempSync(join(tmpdir(), 'fleet-logs-')));
  afterAll(async () => {
    try {
      for (const server of servers.reverse()) await server.stop();
      for (const socket of sockets) socket.destroy();
      stalled.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('never holds a machine back for longer than the write timeout', async () => {
    await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve));
    const sinkPort = (stalled.address() as { port: number }).port;
    const start = async (main: string, args: string[]) => {
      const server = await startServerProcess({
        command: process.execPath,
        args: [main, ...args],
        listeners: ['api'],
        env,
      });
      servers.push(server);
      return present(server.urls.api, 'server.urls.api');
    };
    const corrosion = await start(serverMain('@fleet/corrosion'), [
      'agent',
      '--db',
      join(dir, 'c.db'),
      '--api-addr',
      '127.0.0.1:0',
    ]);
    const flyd = await start(join(here, '..', 'dist', 'main.js'), [
      ...['--listen', '127.0.0.1:0', '--data-dir', join(dir, 'flyd'), '--corrosion-url', corrosion],
      ...['--log-sink', `127.0.0.1:${sinkPort}`, '--log-write-timeout-ms', '200'],
      ...['--images-dir', sampleImagesDir],
      '--stop-machines-on-exit', // the test leaves no machine running behind it
    ]);
    const call = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${flyd}${path}`, {
        method,
        headers: {
          authorization: 'Bearer t',
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
      });
      return (await response.json()) as Record<string, unknown>;
    };
    const config = {
      image: 'hello',
      init: { exec: ['node', '-e', chatty] },
      restart: { policy: 'no' },
    };
    const id = (await call('POST', '/v1/machines', { app: 'logs', config })).id as string;
    // The machine finishes its 10 MB and exits on its own: nothing wedged it.
    expect(await call('GET', `/v1/machines/${id}/wait?state=stopped&timeout=60`)).toMatchObject({
      ok: true,
    });
    const events = (await call('GET', `/v1/machines/${id}`)).events as {
      request?: { exit_event?: { exit_code: number } };
    }[];
    expect(events[0]?.request?.exit_event?.exit_code).toBe(0);
    // The exit can be seen before the output pipes have drained into the ring: read until the
    // last line is there (bounded).
    let last: string | undefined;
    for (let attempt = 0; attempt < 100 && last !== 'DONE'; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 50));
      const lines = (await call('GET', `/v1/machines/${id}/logs`)) as unknown as {
        message: string;
      }[];
      last = lines.at(-1)?.message;
    }
    expect(last).toBe('DONE');
    const metrics = await (await fetch(`${flyd}/metrics`)).text();
    expect(metrics).toMatch(/flyd_log_sink_timeouts_total\{[^}]*\} [1-9]/);
  }, 90_000);
});
