import { spawn } from 'node:child_process';
import { get } from 'node:http';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const flaps = [
  process.execPath,
  join(here, '..', 'dist', 'main.js'),
  ...[
    '--listen',
    '127.0.0.1:0',
    '--corrosion-url',
    'http://127.0.0.1:1',
    '--token',
    't',
    '--flyd-token',
    'f',
  ],
];

/** One API call on a fresh connection, as a new client makes it; true when answered 200. */
function callOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const request = get(
      { host: '127.0.0.1', port, path: '/openapi.json', agent: false, timeout: 10_000 },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode === 200));
      },
    );
    request.on('error', () => resolve(false));
    request.on('timeout', () => request.destroy());
  });
}

// Seed 002: redeploying flaps must not fail calls. A holder keeps the listening socket, as
// systemd's socket activation does, and hands it to each flaps (LISTEN_FDS, fd 3). Under a
// steady stream of calls on fresh connections, flaps is stopped and started again twice:
// connections wait in the socket's backlog meanwhile, and not one call fails.
describe('flaps under socket activation', () => {
  it('restarts under a steady stream of calls without failing one', async () => {
    const holder = spawn('python3', [join(here, 'fixtures', 'socket-holder.py')], {
      stdio: ['pipe', 'pipe', 'inherit'],
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
    try {
      await start();
      let running = true;
      const outcomes: boolean[] = [];
      const stream = (async () => {
        while (running) {
          outcomes.push(await callOnce(port));
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      await new Promise((resolve) => setTimeout(resolve, 300));
      for (let restart = 0; restart < 2; restart++) {
        await stop();
        await start();
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      running = false;
      await stream;
      expect(outcomes.length).toBeGreaterThan(20);
      expect(outcomes.filter((ok) => !ok)).toEqual([]);
    } finally {
      holder.stdin.end();
      await new Promise((resolve) => holder.once('exit', resolve));
    }
  }, 60_000);
});
