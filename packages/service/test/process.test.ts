import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { isRunning, startServerProcess } from '../src/index.js';
import { until } from '../src/vitest-until.js';

const built = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'index.js');
const dir = mkdtempSync(join(tmpdir(), 'fleet-process-'));
const pids: number[] = [];
afterAll(() => {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone, as it should be
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

function script(name: string, source: string): string {
  const path = join(dir, name);
  writeFileSync(path, source);
  return path;
}

// A server that prints listening events is ready once every named listener is announced.
describe('startServerProcess', () => {
  it('waits for every listener and stops the process with SIGTERM', async () => {
    const main = script(
      'server.mjs',
      `import http from 'node:http';
       const server = http.createServer((q, s) => s.end('hi')).listen(0, '127.0.0.1', () => {
         const url = 'http://127.0.0.1:' + server.address().port;
         console.log(JSON.stringify({ event: 'listening', listener: 'api', url }));
         console.log(JSON.stringify({ event: 'listening', listener: 'admin', url }));
       });
       process.on('SIGTERM', () => server.close(() => process.exit(0)));`,
    );
    const logFile = join(dir, 'server.log');
    const server = await startServerProcess({
      command: process.execPath,
      args: [main],
      listeners: ['api', 'admin'],
      logFile,
    });
    expect(await (await fetch(server.urls.api!)).text()).toBe('hi');
    await server.stop();
    expect(await server.exited).toBe(0);
    expect(readFileSync(logFile, 'utf8')).toContain('"listener":"admin"');
  });

  // A server that dies before it is ready rejects with its last output.
  it('rejects with the tail of the output when the server exits early', async () => {
    const main = script('crash.mjs', `console.error('cannot open db'); process.exit(3);`);
    await expect(
      startServerProcess({ command: process.execPath, args: [main], listeners: ['api'] }),
    ).rejects.toThrow(/exited \(3\)[\s\S]*cannot open db/);
  });

  // A server that never announces is killed after the start timeout.
  it('kills a server that never becomes ready', async () => {
    const main = script('silent.mjs', 'setInterval(() => {}, 1000);');
    await expect(
      startServerProcess({
        command: process.execPath,
        args: [main],
        listeners: ['api'],
        startTimeoutMs: 300,
      }),
    ).rejects.toThrow(/no listening event/);
  });
});

// The pipe startServerProcess hands a server (FLEET_PARENT_FD) ends when the process that
// started it is gone, however it went: a supervisor killed with SIGKILL leaves no server behind,
// and the server still closes gracefully (its close hook runs).
describe('a server started by startServerProcess', () => {
  it('shuts down by itself, gracefully, when its starter is killed with SIGKILL', async () => {
    const closed = join(dir, 'closed-by-hook');
    const server = script(
      'watched.mjs',
      `const { createLogger, onShutdown } = await import(${JSON.stringify(built)});
       const { writeFileSync } = await import('node:fs');
       const logger = createLogger('watched');
       onShutdown(logger, async () => writeFileSync(${JSON.stringify(closed)}, 'yes'));
       setInterval(() => {}, 1000);
       console.log(JSON.stringify({ event: 'listening', listener: 'api', url: 'none' }));`,
    );
    const starter = script(
      'starter.mjs',
      `const { startServerProcess } = await import(${JSON.stringify(built)});
       const server = await startServerProcess({
         command: process.execPath, args: [${JSON.stringify(server)}], listeners: ['api'],
         ownProcessGroup: true,
       });
       console.log('server ' + server.child.pid);`,
    );
    const supervisor = spawn(process.execPath, [starter], { stdio: ['ignore', 'pipe', 'inherit'] });
    pids.push(supervisor.pid!);
    const serverPid = await new Promise<number>((resolve, reject) => {
      createInterface({ input: supervisor.stdout! }).on('line', (line) => {
        if (line.startsWith('server ')) resolve(Number(line.slice(7)));
      });
      supervisor.once('exit', (code) => reject(new Error(`starter exited ${code}`)));
    });
    pids.push(serverPid);
    expect(isRunning(serverPid)).toBe(true);
    supervisor.kill('SIGKILL');
    await until(`server ${serverPid} gone`, () => !isRunning(serverPid));
    expect(existsSync(closed)).toBe(true);
  }, 30_000);
});
