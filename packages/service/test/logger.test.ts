import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const built = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'index.js');
const dir = mkdtempSync(join(tmpdir(), 'fleet-logger-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Bound on a server's exit after SIGTERM: its shutdown timeout (3 s) and a generous margin. */
const exitWaitMsMax = 15_000;

// A server as every Fleet server is built (createLogger, createHttpServer, onShutdown with a
// 3 s bound) whose GET /spam logs 4 MB; its URL goes to stderr, so stdout can be left unread.
const server = join(dir, 'server.mjs');
writeFileSync(
  server,
  `const { createHttpServer, createLogger, listenHttp, onShutdown, startMetrics } =
     await import(${JSON.stringify(built)});
   const logger = createLogger('log-test');
   const metrics = startMetrics('log-test');
   const app = createHttpServer({ logger, metrics });
   const big = 'x'.repeat(2048);
   app.get('/spam', async () => {
     for (let line = 0; line < 2000; line++) logger.info({ big }, 'spam');
     return { ok: true };
   });
   onShutdown(logger, async () => { await app.close(); await metrics.shutdown(); }, { timeoutMs: 3000 });
   const url = await listenHttp(app, '127.0.0.1:0', 'api');
   process.stderr.write('url ' + url + '\\n');`,
);

async function startServer(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [server], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (line) => {
      if (line.startsWith('url ')) resolve(line.slice(4));
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  return { child, url };
}

/** The exit code, or 'still running' once `exitWaitMsMax` has passed. */
function exitOf(child: ChildProcess): Promise<number | string | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('still running'), exitWaitMsMax);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? signal);
    });
  });
}

async function droppedLines(url: string, reason: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const match = new RegExp(
    `^log_lines_dropped_total\\{[^}]*reason="${reason}"[^}]*\\} (\\d+)`,
    'm',
  );
  return Number(match.exec(text)?.[1] ?? 0);
}

// seed 003 in our own logs: a stdout nobody reads (blocked) or whose reader is gone (EPIPE)
// costs dropped, counted lines — the server keeps answering and still exits on SIGTERM within
// its shutdown bound. pino's default destination retried such writes without end and flushed
// them synchronously at exit, so the server outlived every SIGTERM.
describe('a server whose stdout is not being read', () => {
  it('keeps answering, counts what it dropped, and exits on SIGTERM when stdout is blocked', async () => {
    const { child, url } = await startServer();
    child.stdout!.pause(); // the reader lives but never reads: the pipe fills up
    for (let call = 0; call < 5; call++) {
      const answer = await fetch(`${url}/spam`, { signal: AbortSignal.timeout(10_000) });
      expect(answer.status).toBe(200);
    }
    expect(await droppedLines(url, 'blocked')).toBeGreaterThan(0);
    child.kill('SIGTERM');
    expect(await exitOf(child)).toBe(0);
  }, 60_000);

  it('keeps answering, counts what it dropped, and exits on SIGTERM when stdout is closed', async () => {
    const { child, url } = await startServer();
    child.stdout!.destroy(); // the reader is gone: writes fail with EPIPE
    for (let call = 0; call < 3; call++) {
      const answer = await fetch(`${url}/spam`, { signal: AbortSignal.timeout(10_000) });
      expect(answer.status).toBe(200);
    }
    expect(await droppedLines(url, 'closed')).toBeGreaterThan(0);
    child.kill('SIGTERM');
    expect(await exitOf(child)).toBe(0);
  }, 60_000);
});
