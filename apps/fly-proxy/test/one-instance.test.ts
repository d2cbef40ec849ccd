import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ServerProcess, startServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Edge, startEdge, startMachine } from './relay-fixture.js';

const proxyMain = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');

// Seed 004: two proxies on one host must never both be active. The second on a state directory
// exits naming the first; a standby waits, and takes over when the active one is gone.
describe('one active fly-proxy per state directory', () => {
  let edge: Edge;
  let stateDir: string;
  const started: ServerProcess[] = [];
  let machineClose: () => Promise<unknown>;

  const args = (more: string[] = []) => [
    proxyMain,
    ...['--listen', '127.0.0.1:0', '--corrosion-url', edge.corrosionUrl],
    ...['--domain', 'fleet.test', '--region', 'ams', '--state-dir', stateDir, ...more],
  ];

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'fleet-one-proxy-'));
    const machine = await startMachine('m1');
    machineClose = () => new Promise((resolve) => machine.server.close(resolve));
    edge = await startEdge([{ id: 'm1', app: 'web', addr: machine.addr, region: 'ams' }], {
      region: 'ams',
    });
  });

  afterAll(async () => {
    for (const server of started) await server.stop();
    await edge?.stop();
    await machineClose?.();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it('refuses a second proxy on the same state directory, naming the first', async () => {
    const first = await startServerProcess({
      command: process.execPath,
      args: args(),
      listeners: ['proxy', 'admin'],
      env: { ...process.env, LOG_LEVEL: 'error' },
    });
    started.push(first);
    const second = spawn(process.execPath, args(), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    second.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const code = await new Promise((resolve) => second.once('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toContain(`pid ${first.child.pid}`);
  });

  it('keeps a standby waiting until the active proxy is gone, then it serves', async () => {
    const active = present(started[0], 'the active proxy');
    const standby = spawn(process.execPath, args(['--standby']), {
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, LOG_LEVEL: 'info' },
    });
    try {
      let output = '';
      standby.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        output += chunk;
      });
      // a standby that exits will never log it: say so instead of waiting out the deadline
      const logged = (pattern: RegExp) =>
        until(`${pattern} in the standby's output`, () => {
          if (standby.exitCode !== null) throw new Error(`the standby exited: ${output}`);
          return pattern.exec(output) ?? undefined;
        });
      await logged(/another proxy is active here/);
      expect(output).not.toMatch(/"event":"listening"/);
      await active.stop();
      started.length = 0;
      const [, url] = await logged(/"listener":"proxy","url":"(http:[^"]+)"/);
      await until('a 200 from the standby', async () => {
        const answer = await request(present(url, 'the URL logged'), {
          headers: { host: 'web.fleet.test' },
        });
        await answer.body.dump();
        return answer.statusCode === 200;
      });
    } finally {
      standby.kill('SIGTERM');
      if (standby.exitCode === null) await new Promise((resolve) => standby.once('exit', resolve));
    }
  });
});
