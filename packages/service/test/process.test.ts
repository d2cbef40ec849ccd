import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startServerProcess } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'fleet-process-'));

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
